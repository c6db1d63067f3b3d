"""A person in a real browser (Debian's Chromium driven by Playwright): log in to Airflow, open Browse -> Agentic,
and find which model serves and why, the drift chart, the agents' decisions and what waits for an approval.

Screenshots go to ``$PYTEST_ARTIFACTS/ui`` (default ``test-artifacts/ui`` in the checkout, ignored by git).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from ui_seed import DAG_A, DAG_B, MODEL

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("PYTEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts") / "ui"


@pytest.fixture()
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)  # the UI's first load is slow on a busy two-core machine
        yield page
        browser.close()


def test_a_person_finds_the_flywheel_under_browse_agentic(ui_stack, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{ui_stack.url}/")
    page.fill("input[name=username]", "admin")  # Airflow's login form (FAB auth manager)
    page.fill("input[name=password]", "admin")
    page.locator("[type=submit]").click()

    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Agentic").click()
    expect(page).to_have_url(re.compile(r"/plugin/agentic$"))
    plugin = page.frame_locator("iframe")

    # The model list: a page of 25 of the 200+ registered models, most recently updated first, and more pages.
    rows = plugin.locator("#model-list tr.model-row")
    expect(rows).to_have_count(25)
    expect(plugin.locator(".pager .page-info")).to_contain_text(re.compile(r"page 1 of (9|\d\d)"))
    plugin.locator(".pager a.next").click()
    expect(plugin.locator(".pager .page-info")).to_contain_text("page 2 of")
    expect(rows).to_have_count(25)
    expect(plugin.locator("tr.model-row[data-model^=fleet-][data-champion='1']").first).to_be_visible()

    # Search finds the one model among them.
    plugin.locator("#model-search input[name=q]").fill(MODEL)
    plugin.locator("#model-search button[type=submit]").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-model", MODEL)
    expect(rows.first).to_contain_text("retrained after drift in x1, x3")
    page.screenshot(path=ARTIFACTS / "flywheel-in-airflow.png", full_page=True)

    # Per-DAG filtering of drift, approvals and decisions.
    plugin.locator("#dag-filter select[name=dag_id]").select_option(DAG_A)
    expect(plugin.locator("tr.trace-row")).not_to_have_count(0)
    expect(plugin.locator(f"tr.trace-row:not([data-dag-id={DAG_A}])")).to_have_count(0)
    expect(plugin.locator(f"tr.approval:not([data-dag-id={DAG_A}])")).to_have_count(0)
    expect(plugin.locator("img.timeline-chart")).to_have_count(1)

    # The model's page: which version serves, since when and why; aliases; history; drift; decisions.
    plugin.get_by_role("link", name=MODEL, exact=True).click()
    model = plugin.locator(f"section.model[data-model={MODEL}]")
    expect(model.locator(".serving")).to_contain_text("Serving version 3")
    expect(model.locator(".serving")).to_contain_text("retrained after drift in x1, x3")
    for alias, version in (("champion", "3"), ("previous", "1"), ("challenger", "4")):
        expect(model.locator(f"tr.version[data-aliases~={alias}]")).to_have_attribute("data-version", version)
    history = model.locator("table.history tr")  # newest first, after the header row
    expect(history.nth(1)).to_contain_text("promotion: v1 → v3")
    expect(history.nth(2)).to_contain_text("rollback: v2 → v1")
    expect(history.nth(2)).to_contain_text("v2 worse than v1")
    # The DAG filter came along: DAG A's drift only; then every DAG of the model.
    expect(model.locator("img.timeline-chart")).to_have_count(1)
    expect(model.locator("#dag-filter select[name=dag_id] option")).to_have_count(3)  # all, A, B
    model.locator("#dag-filter a.all-dags").click()
    for dag_id in (DAG_A, DAG_B):
        expect(model.locator(f"img.timeline-chart[data-dag-id={dag_id}]")).to_be_visible()
    page.frame(url=re.compile(r"/agentic/ui/model")).wait_for_function(
        "() => [...document.querySelectorAll('img.timeline-chart')]"
        ".every(img => img.complete && img.naturalWidth > 500)")
    expect(model.locator("tr.drift-point")).to_have_count(4)
    expect(model.locator("tr.drift-point[data-detected=true]")).to_have_count(3)
    expect(model.locator("tr.marker[data-kind=request_retraining]")).to_have_count(1)
    expect(model.locator("#accuracy tr.realised")).to_be_visible()

    # What waits for a person, with the way to Airflow's Required Actions.
    waiting = model.locator("tr.approval")
    expect(waiting).to_have_count(2)
    expect(waiting.first).to_contain_text("approve request_retraining")
    expect(waiting.first.get_by_role("link", name="Answer in Required Actions")).to_have_attribute(
        "href", re.compile(r"/dags/agentic_ui_flywheel_\w/runs/.+/tasks/monitor/required_actions$"))
    page.screenshot(path=ARTIFACTS / "model-in-airflow.png", full_page=True)

    # A decision, step by step.
    model.locator("tr.trace-row", has_text="request_retraining").get_by_role("link").click()
    trace = plugin.locator("section.trace")
    expect(trace).to_contain_text("Decision: request_retraining")
    expect(trace).to_contain_text("performance drop on delayed labels")
    expect(trace.locator("tr.step").first).to_contain_text("request_retraining")
    expect(trace.locator("tr.step").first.locator("td.verdict-allowed")).to_have_text("allowed")
    page.screenshot(path=ARTIFACTS / "decision-trace.png", full_page=True)

    # The plugin's pages on their own (the same cookie), whole, for the artefacts.
    page.goto(f"{ui_stack.url}/agentic/ui")
    expect(page.locator("h1")).to_have_text("Agentic flywheel")
    expect(page.locator("#model-list tr.model-row")).to_have_count(25)
    page.screenshot(path=ARTIFACTS / "ui-list.png", full_page=True)
    page.goto(f"{ui_stack.url}/agentic/ui/model?name={MODEL}")
    page.wait_for_function("() => [...document.querySelectorAll('img.timeline-chart')]"
                           ".every(img => img.complete && img.naturalWidth > 500)")
    page.screenshot(path=ARTIFACTS / "ui-model.png", full_page=True)
    print(f"screenshots in {ARTIFACTS}")
