rule report:
    input:
        metrics=all_metrics(),
        scores=all_scores(),
    output:
        table=f"{R}/tables/accuracy.csv",
        markdown=f"{R}/tables/accuracy.md",
        per_class=f"{R}/tables/per_class.csv",
        fidelity=f"{R}/tables/class_fidelity.csv",
        plot=report(f"{R}/plots/accuracy.png", caption="../report/accuracy.rst", category="Accuracy"),
    log:
        log_for("report"),
    benchmark:
        benchmark_for("report")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        protocol=config["protocol"],
    script:
        "../../scripts/report.py"
