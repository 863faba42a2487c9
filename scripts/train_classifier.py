from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.train_classifier(
        classes_txt=snakemake.input.class_list,
        real=snakemake.input.real,
        split_json=snakemake.input.split,
        generated=list(snakemake.input.generated),
        arm=snakemake.wildcards.arm,
        seed=int(snakemake.wildcards.seed),
        split_name=snakemake.wildcards.split,
        classifier=snakemake.params.classifier,
        specaugment=snakemake.params.specaugment,
        weights=snakemake.output.weights,
        metrics=snakemake.output.metrics,
        generated_set=snakemake.params.generated_set,
        features=snakemake.params.features,
        description=snakemake.output.description,
    )
