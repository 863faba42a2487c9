from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.import_pretrained(snakemake.params.source, snakemake.output.model, snakemake.params.get("revision"))
