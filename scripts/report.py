from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.report(
        metrics=list(snakemake.input.metrics),
        scores=list(snakemake.input.scores),
        records=list(snakemake.input.records),
        rejected_csv=snakemake.input.rejected,
        protocol=snakemake.params.protocol,
        dataset=snakemake.params.dataset,
        replicates=snakemake.params.replicates,
        baseline_seed=snakemake.params.baseline_seed,
        outputs=dict(snakemake.output.items()),
    )
