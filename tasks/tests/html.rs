//! `report.html`: written beside `report.md` by `optbench report` (and `run`), one
//! self-contained page with the report's tables, the plots inline, the config and the software.

mod common;

use common::*;

const CONFIG: &str = r#"
name = "page"
seeds = [0]

[[tasks]]
name = "toy2d-quadratic"
steps = 40
eval_every = 10

[[optimizers]]
name = "adam"
lr = [0.01, 0.1]

[[optimizers]]
name = "sgd"
label = "sgd-plain"
lr = 0.01
"#;

#[test]
fn report_writes_a_self_contained_page_with_the_tables_plots_config_and_software() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.toml"), CONFIG).unwrap();
    let (ok, stdout, stderr) = optbench(&["run", "page.toml", "--quiet"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    let html_path = dir.path().join("results/page/report.html");
    assert!(html_path.exists(), "`run` writes report.html");
    std::fs::remove_file(&html_path).unwrap();
    let (ok, stdout, stderr) = optbench(&["report", "results/page"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    let html = std::fs::read_to_string(&html_path).expect("`report` writes report.html");
    let md = std::fs::read_to_string(dir.path().join("results/page/report.md")).unwrap();

    // The report's tables, rendered: one row per arm, the label escaped.
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<table>"), "{html}");
    assert!(html.contains("<h2>page / toy2d-quadratic</h2>"), "{html}");
    assert!(html.contains("<td>sgd-plain</td>"), "{html}");
    let rows = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| optimizer")).count();
    assert!(rows >= 2 && html.matches("<tr><td>").count() >= rows, "every table row of report.md is in the page");
    // The plots, inline.
    assert!(html.contains("<svg ") && html.contains("class=\"series\""), "inline plots");
    assert!(html.contains("page--toy2d-quadratic--curves") && html.contains("page--toy2d"), "curves and toy panels");
    let (table, curves, plots) = (
        html.find("<h2>page / toy2d-quadratic</h2>").unwrap(),
        html.find("id=\"page--toy2d-quadratic--curves\"").unwrap(),
        html.find("<h2>Plots</h2>").unwrap(),
    );
    assert!(table < curves && curves < plots, "a task's plots are under its table");
    // The config and the software.
    assert!(html.contains("<h2>Configs</h2>") && html.contains("page.toml"), "the config file is named");
    assert!(html.contains("name = &quot;page&quot;"), "and shown, escaped");
    assert!(html.contains("<h2>Software</h2>") && html.contains("candle 0.11"), "the software");
    // Nothing external: no addresses, no files, no scripts.
    assert!(!html.contains("http"), "no address in the page");
    assert!(!html.contains("src="), "no file referenced");
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("href="), "no link");
}
