from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.report(
        list(snakemake.input.metrics),
        list(snakemake.input.scores),
        list(snakemake.input.records),
        snakemake.input.rejected,
        snakemake.params.protocol,
        snakemake.params.dataset,
        snakemake.params.replicates,
        snakemake.params.baseline_seed,
        dict(snakemake.output.items()),
    )
