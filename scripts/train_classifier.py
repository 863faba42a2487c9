from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_classifiers(
        classes_txt=snakemake.input.class_list,
        real=snakemake.input.real,
        split_json=snakemake.input.split,
        generated=list(snakemake.input.generated),
        arm=snakemake.wildcards.arm,
        seeds=snakemake.params.seeds,
        generated_sets=snakemake.params.generated_sets,
        split_name=snakemake.wildcards.split,
        classifier=snakemake.params.classifier,
        specaugment=snakemake.params.specaugment,
        features=snakemake.params.features,
        weights=list(snakemake.output.weights),
        metrics=list(snakemake.output.metrics),
        descriptions=list(snakemake.output.description),
    )
