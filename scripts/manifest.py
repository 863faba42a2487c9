from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.manifest(
        metadata=snakemake.input.metadata,
        dataset=snakemake.params.dataset,
        output=snakemake.output.manifest,
        rejected_csv=snakemake.output.rejected,
    )
