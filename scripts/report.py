from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.report(
        list(snakemake.input.metrics),
        snakemake.params.protocol,
        snakemake.output.table,
        snakemake.output.markdown,
        snakemake.output.per_class,
        snakemake.output.plot,
    )
