from diffaug import steps
from diffaug.runner import run_step

with run_step(snakemake.log[0], snakemake.threads, getattr(snakemake.resources, "gpu", 0)):
    steps.sample(
        manifest_csv=snakemake.input.manifest,
        pairs_csv=snakemake.input.pairs,
        model_dir=snakemake.input.model,
        class_dirs=list(snakemake.output.clips),
        generate=snakemake.params.generate,
        generated_set=int(snakemake.wildcards.generated_set),
        output_rate=snakemake.params.output_rate,
    )
