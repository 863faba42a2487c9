from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.report(
        metrics=list(snakemake.input.metrics),
        scores=list(snakemake.input.scores),
        judges=list(snakemake.input.judges),
        held_out=list(snakemake.input.held_out),
        novelty=list(snakemake.input.novelty),
        records=list(snakemake.input.records),
        rejected_csv=snakemake.input.rejected,
        protocol=snakemake.params.protocol,
        dataset=snakemake.params.dataset,
        generated_sets=snakemake.params.generated_sets,
        outputs=dict(snakemake.output.items()),
    )
