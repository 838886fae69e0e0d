"""The web page at / in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium): upload a
clip, get its transcript, word timings and labels on the page; a bad file shows the server's error. A screenshot
is saved to $OSUM_TEST_ARTIFACTS (default .artifacts/) as web_page.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from serving_helpers import running_server

import osum
from osum.data.tts import synthesize_array

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = "the quick brown fox jumps over the lazy dog"


def _browser():
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("selenium is not installed: pip install selenium")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "Chromium is not installed: apt-get install chromium chromium-driver "
            "(scripts/install_system_deps.sh --test, run by `make test`)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1400"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


@pytest.fixture(scope="module")
def page():
    browser = _browser()
    model = osum.load("mini-stage1", device="cpu")
    try:
        with running_server(model) as url:
            yield browser, url
    finally:
        browser.quit()


def test_upload_a_clip_and_read_the_transcript(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, url = page
    clip = tmp_path / "fox.wav"
    sf.write(clip, synthesize_array(SENTENCE, voice="rms", engine="flite"), 16000)  # Whisper reads it
    browser.get(f"{url}/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: b.find_elements(By.ID, "task-srwt"))  # the task list came from /v1/models
    assert browser.find_element(By.ID, "model").text == "model: mini-stage1"
    browser.find_element(By.ID, "audio-file").send_keys(str(clip))
    for task in ("srwt", "sgc"):
        browser.find_element(By.ID, f"task-{task}").click()
    browser.find_element(By.ID, "run").click()
    wait.until(lambda b: b.find_element(By.ID, "transcript").text.strip())
    said = "".join(
        c for c in browser.find_element(By.ID, "transcript").text.lower() if c.isalpha() or c == " "
    )
    assert said.split() == SENTENCE.split()
    rows = browser.find_elements(By.CSS_SELECTOR, "#words tbody tr")
    assert len(rows) >= 6 and rows[0].find_elements(By.TAG_NAME, "td")[1].text.replace(".", "").isdigit()
    assert "sgc: gender = male" in browser.find_element(By.ID, "labels").text
    assert not browser.find_element(By.ID, "error").is_displayed()
    out = Path(os.environ.get("OSUM_TEST_ARTIFACTS", ROOT / ".artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "web_page.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_a_file_that_is_not_audio_shows_the_servers_error(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, url = page
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not audio\n")
    browser.get(f"{url}/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: b.find_elements(By.ID, "task-asr"))
    browser.find_element(By.ID, "audio-file").send_keys(str(notes))
    browser.find_element(By.ID, "run").click()
    wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
    message = browser.find_element(By.ID, "error").text
    assert message.startswith("415: notes.txt: cannot read audio"), message
    assert not browser.find_element(By.ID, "results").is_displayed()
