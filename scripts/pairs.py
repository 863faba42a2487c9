from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.pairs(
        manifest_csv=snakemake.input.manifest,
        split_json=snakemake.input.split,
        settings=snakemake.params.pairs,
        generated_set=int(snakemake.wildcards.generated_set),
        output=snakemake.output.pairs,
    )
