from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_mel_average(
        classes_txt=snakemake.input.class_list,
        real=snakemake.input.real,
        pairs_csv=snakemake.input.pairs,
        features=snakemake.params.features,
        output=snakemake.output.features,
    )
