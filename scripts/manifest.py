from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.manifest(
        index=snakemake.input.dataset,
        dataset=snakemake.params.dataset,
        output=snakemake.output.manifest,
        rejected_csv=snakemake.output.rejected,
        classes_txt=snakemake.output.class_list,
    )
