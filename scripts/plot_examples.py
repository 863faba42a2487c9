from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.plot_examples(
        manifest_csv=snakemake.input.manifest,
        split_json=snakemake.input.split,
        class_dirs=list(snakemake.input.classes),
        model_dir=snakemake.input.model,
        output=snakemake.output.plot,
    )
