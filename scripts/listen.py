from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.listen(
        snakemake.input.manifest,
        snakemake.input.pairs,
        list(snakemake.input.get("classes", [])),
        snakemake.input.get("mel_average"),
        snakemake.input.get("model"),
        snakemake.params.features,
        snakemake.params.seed,
        snakemake.output.page,
    )
