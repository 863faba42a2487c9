from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.pairs(
        manifest_csv=snakemake.input.manifest,
        split_json=snakemake.input.split,
        settings=snakemake.params.pairs,
        replicate=int(snakemake.wildcards.replicate),
        output=snakemake.output.pairs,
    )
