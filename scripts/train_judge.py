from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_judge(
        classes_txt=snakemake.input.class_list,
        real=snakemake.input.real,
        split_json=snakemake.input.split,
        half=int(snakemake.wildcards.half),
        classifier=snakemake.params.classifier,
        seed=snakemake.params.seed,
        weights=snakemake.output.weights,
        metrics=snakemake.output.metrics,
        held_out_csv=snakemake.output.held_out,
    )
