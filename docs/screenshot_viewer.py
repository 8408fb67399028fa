"""Take the README's screenshot of `agentsynth view`'s episode page: docs/viewer-episode.png.

Runs a small real run on the sim (arithmetic under hint feedback, with a system prompt and a
format score), starts the real `agentsynth view` on it, opens an episode that took two turns
(a wrong first answer, the hint, a right second one) in Debian's headless Chromium (selenium)
and saves the page.

    python docs/screenshot_viewer.py                  # writes docs/viewer-episode.png
    python docs/screenshot_viewer.py --out /tmp/x.png
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "viewer-episode.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory(prefix="agentsynth-shot-") as tmp:
        store = Path(tmp) / "demo.duckdb"
        spec = Path(tmp) / "demo.toml"
        spec.write_text(textwrap.dedent(f"""
            name = "hint-demo"
            model = "sim"
            samples = 2
            store = "{store}"
            system_prompt = "You are a careful assistant. End with a line 'Answer: <integer>'."
            [[envs]]
            id = "arithmetic"
            tasks = 20
            difficulty = 2
            max_turns = 3
            feedback = "hint"
            """))
        subprocess.run([sys.executable, "-m", "agentsynth", "run", str(spec), "-q"], check=True, env=env, cwd=tmp)
        import duckdb

        con = duckdb.connect(str(store), read_only=True)
        (episode,) = con.execute("SELECT episode_id FROM episodes WHERE turns = 2 AND passed_last ORDER BY seed, sample LIMIT 1").fetchone()
        con.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        view = subprocess.Popen([sys.executable, "-m", "agentsynth", "view", "--store", str(store), "--port", str(port)],
                                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    urllib.request.urlopen(url + "/static/viewer.css", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            options = webdriver.ChromeOptions()
            options.binary_location = args.chromium
            for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                        "--hide-scrollbars", "--force-device-scale-factor=1"):
                options.add_argument(arg)
            driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
            try:
                driver.get(f"{url}/episodes/{episode}")
                for _ in range(2):  # the height at this width, then once more after the resize
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.set_window_size(1280, min(max(height + 160, 700), 1800))  # + the window's own frame
                driver.save_screenshot(args.out)
            finally:
                driver.quit()
        finally:
            view.send_signal(signal.SIGINT)
            view.wait(timeout=10)
    print(f"wrote {args.out} (episode {episode})")


if __name__ == "__main__":
    main()
