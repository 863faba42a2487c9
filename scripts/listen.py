from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads):
    steps.listen(
        manifest_csv=snakemake.input.manifest,
        pairs_csv=snakemake.input.pairs,
        class_dirs=list(snakemake.input.get("classes", [])),
        reconstructed_dirs=list(snakemake.input.get("reconstructed", [])),
        sampled_dirs=list(snakemake.input.get("sampled", [])),
        mel_average=snakemake.input.get("mel_average"),
        mel=snakemake.params.mel,
        model_dir=snakemake.input.get("model"),
        features=snakemake.params.features,
        seed=snakemake.params.seed,
        output=snakemake.output.page,
    )
