from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.features_round_trip(
        manifest_csv=snakemake.input.manifest,
        classes_txt=snakemake.input.class_list,
        pairs_csv=snakemake.input.pairs,
        mel=snakemake.params.mel,
        model_dir=snakemake.input.get("model"),
        features=snakemake.params.features,
        seed=snakemake.params.seed,
        generated_set=int(snakemake.wildcards.generated_set),
        output=snakemake.output.features,
    )
