from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.select_generated(
        features=snakemake.input.features,
        scores_csv=snakemake.input.scores,
        pairs_csv=snakemake.input.pairs,
        keep=snakemake.params.keep,
        output=snakemake.output.features,
        fates_csv=snakemake.output.fates,
    )
