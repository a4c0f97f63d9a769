"""The header's Benchmark menu in a real browser: `python app.py` started with HF_ENDPOINT on a
stand-in hub (tests/standin_hub.py) holding a few rows of TOFU and tiny models under the
published names; picking TOFU forget10 downloads its data and target model, and a 2-step run
on it ends with a report."""

from __future__ import annotations

import sys

import pytest

from tests import arch_models
from tests.e2e.conftest import ROOT, serve
from tests.e2e.test_browser import choose_method, open_app, set_value, wait_done
from tests.standin_hub import StandInHub
from tests.test_suites import tofu_repo
from unlearning import suites

TARGET = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
RETAIN = "open-unlearning/tofu_Llama-3.2-1B-Instruct_retain90"


@pytest.fixture(scope="module")
def hub_app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    hub = StandInHub()
    hub.add(suites.TOFU_DATA, tofu_repo(root / "tofu"), "dataset")
    for seed, repo in enumerate([TARGET, RETAIN]):
        hub.add(repo, arch_models.build("llama", root / repo.replace("/", "--"), seed=seed))
    hub.start()
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(root / "cache"), "UNLEARNING_WARM": "0"}
    try:
        with serve([sys.executable, "app.py"], ROOT / "test-artifacts" / "suites-server.log", env) as url:
            yield url, hub
    finally:
        hub.stop()


def test_tofu_preset_from_the_header(browser, hub_app_url, shot):
    url, hub = hub_app_url
    context, page = open_app(browser, url)
    page.click("#benchmark input")
    page.get_by_role("option", name=suites.SUITES["tofu:forget10"].label, exact=True).click()
    page.wait_for_function("document.querySelector('#header-data').innerText.includes('forget10')", timeout=60_000)
    page.wait_for_function("document.querySelector('#model-status').innerText.includes('loaded')", timeout=120_000)
    assert page.input_value("#model-name input") == TARGET
    shot(page, "tofu-preset")
    choose_method(page, "baseline: gradient ascent")
    set_value(page, "steps", "2")
    page.click("#start-run")
    wait_done(page)
    shot(page, "tofu-run")
    assert "config.json" in hub.downloaded(RETAIN)  # the oracle: the published retain model
    context.close()
