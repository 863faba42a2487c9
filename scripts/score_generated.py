from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.score_generated(
        classes_txt=snakemake.input.class_list,
        origin=snakemake.wildcards.origin,
        features=snakemake.input.features,
        pairs_csv=snakemake.input.pairs,
        judges=list(snakemake.input.judges),
        classifier=snakemake.params.classifier,
        output=snakemake.output.scores,
    )
