from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features(
        manifest_csv=snakemake.input.manifest,
        features=snakemake.params.features,
        output=snakemake.output.features,
        threads=snakemake.threads,
    )
