from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.split(
        manifest_csv=snakemake.input.manifest,
        name=snakemake.wildcards.split,
        protocol=snakemake.params.protocol,
        output=snakemake.output.split,
    )
