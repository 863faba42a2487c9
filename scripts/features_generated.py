from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_generated(
        classes_txt=snakemake.input.class_list,
        class_dirs=list(snakemake.input.classes),
        features=snakemake.params.features,
        output=snakemake.output.features,
        threads=snakemake.threads,
    )
