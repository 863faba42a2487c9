from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.novelty(
        classes_txt=snakemake.input.class_list,
        real=snakemake.input.real,
        split_json=snakemake.input.split,
        pairs_csvs=list(snakemake.input.pairs),
        scored=list(snakemake.input.scored),
        judges=list(snakemake.input.judges),
        classifier=snakemake.params.classifier,
        in_db=snakemake.params.in_db,
        output=snakemake.output.novelty,
    )
