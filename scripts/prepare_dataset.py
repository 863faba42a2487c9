from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.prepare_dataset(
        dataset=snakemake.params.dataset,
        metadata=snakemake.output.metadata,
        threads=snakemake.threads,
    )
