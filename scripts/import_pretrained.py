from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.import_pretrained(
        pipeline=snakemake.params.pipeline,
        output=snakemake.output.model,
        revision=snakemake.params.get("revision"),
    )
