//! The whole journey in a real browser: `attest serve` on a free port against a fresh
//! database, Debian's Chromium driven through chromedriver by labels and buttons, as people
//! would use the portal. Every page visited (and the error states of the sign-in and evidence
//! forms) is checked with axe-core for WCAG 2.0/2.1 A and AA, and the evidence form is also
//! completed with the keyboard alone.
//!
//! Needs `chromium`, `chromedriver` and `tests/browser/node_modules/axe-core` (`bin/test`
//! installs them). On failure the screenshot and page source are saved under
//! `target/journey/`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const PASSWORD: &str = "journey passphrase 2026";

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
}

fn wait_for_port(address: SocketAddr, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on {address} within 30 s")
}

/// A child process stopped when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A database of the journey's own, dropped afterwards.
struct ScratchDatabase {
    server: String,
    name: String,
}

impl ScratchDatabase {
    fn new() -> Self {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@localhost/postgres".into());
        let (server, _) = url.rsplit_once('/').expect("DATABASE_URL names a database");
        Self {
            server: server.to_owned(),
            name: format!("attest_journey_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(format!("{}/postgres", self.server))
            .args([
                "-qc",
                &format!("drop database if exists {} with (force)", self.name),
            ])
            .status();
    }
}

/// `attest serve` on a free port; returns the process, its address and the first-admin
/// setup link it prints.
fn start_attest(database_url: &str) -> anyhow::Result<(Process, String, String)> {
    let address = free_address();
    let mut child = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["serve", "--bind", &address.to_string()])
        .env("DATABASE_URL", database_url)
        .env("ATTEST_SECRET_KEY", "5e".repeat(32))
        .env("ATTEST_SECOND_FACTOR", "optional")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("attest serve starts")?;
    let stdout = child.stdout.take().context("stdout")?;
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    let link = lines
        .find_map(|line| {
            let line = line.ok()?;
            line.trim()
                .contains("/setup/")
                .then(|| line.trim().to_owned())
        })
        .context("attest serve printed the setup link")?;
    wait_for_port(address, "attest serve")?;
    Ok((process, format!("http://{address}"), link))
}

fn start_chromedriver() -> anyhow::Result<(Process, String)> {
    let address = free_address();
    let child = Command::new("chromedriver")
        .arg(format!("--port={}", address.port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("chromedriver starts (apt-get install chromium-driver; bin/test installs it)")?;
    let process = Process(child);
    wait_for_port(address, "chromedriver")?;
    Ok((process, format!("http://{address}")))
}

async fn open_browser(webdriver: &str, profile: &std::path::Path) -> anyhow::Result<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--lang=en-GB", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": "en-GB" },
        }),
    );
    Ok(ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(webdriver)
        .await?)
}

/// The browser with what the journey needs around it.
struct Browser {
    client: Client,
    base: String,
    axe: String,
    /// Pages checked with axe, in order.
    checked: Vec<String>,
}

fn xpath_text(text: &str) -> String {
    // Labels in these pages never hold both kinds of quote.
    if text.contains('\'') {
        format!("\"{text}\"")
    } else {
        format!("'{text}'")
    }
}

impl Browser {
    async fn goto(&mut self, path: &str) -> anyhow::Result<()> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.client.goto(&url).await?;
        self.check_accessibility().await
    }

    /// Opens `path` and checks that it fits the window's width: nothing to scroll sideways.
    async fn fits_width(&mut self, path: &str) -> anyhow::Result<()> {
        self.goto(path).await?;
        let widths = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await?;
        let (scroll, client) = (widths[0].as_i64(), widths[1].as_i64());
        ensure!(
            scroll.is_some() && scroll <= client,
            "{path} is {scroll:?} px wide in a window {client:?} px wide"
        );
        Ok(())
    }

    async fn path(&self) -> anyhow::Result<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    /// The form control a label names, by the label's visible text.
    async fn control(&self, label: &str) -> anyhow::Result<fantoccini::elements::Element> {
        let label_element = self
            .client
            .find(Locator::XPath(&format!(
                "//label[normalize-space(.)={}]",
                xpath_text(label)
            )))
            .await
            .with_context(|| format!("a label \"{label}\""))?;
        let id = label_element
            .attr("for")
            .await?
            .with_context(|| format!("label \"{label}\" names its control"))?;
        self.client
            .find(Locator::Id(&id))
            .await
            .with_context(|| format!("the control of \"{label}\""))
    }

    async fn fill(&self, label: &str, text: &str) -> anyhow::Result<()> {
        let control = self.control(label).await?;
        control.clear().await?;
        control.send_keys(text).await?;
        Ok(())
    }

    /// Types a date into a date field as a person in the UK would: day, month, year.
    async fn fill_date(&self, label: &str, iso: &str) -> anyhow::Result<()> {
        let mut parts = iso.split('-');
        let (year, month, day) = (
            parts.next().context("year")?,
            parts.next().context("month")?,
            parts.next().context("day")?,
        );
        let control = self.control(label).await?;
        // The field's order of day and month follows the browser's locale.
        for typed in [format!("{day}{month}{year}"), format!("{month}{day}{year}")] {
            control.clear().await?;
            control.send_keys(&typed).await?;
            if control.prop("value").await?.as_deref() == Some(iso) {
                return Ok(());
            }
        }
        bail!("the date field \"{label}\" would not take {iso}")
    }

    async fn tick(&self, label: &str) -> anyhow::Result<()> {
        let control = self.control(label).await?;
        if !control.is_selected().await? {
            control.click().await?;
        }
        Ok(())
    }

    async fn choose(&self, label: &str, option: &str) -> anyhow::Result<()> {
        self.control(label).await?.select_by_label(option).await?;
        Ok(())
    }

    async fn attach(&self, label: &str, path: &std::path::Path) -> anyhow::Result<()> {
        self.control(label)
            .await?
            .send_keys(&path.display().to_string())
            .await?;
        Ok(())
    }

    /// Clicks what `xpath` finds, waits for the page it leads to, and checks that page.
    async fn click_through(&mut self, xpath: &str, what: &str) -> anyhow::Result<()> {
        let element = self
            .client
            .find(Locator::XPath(xpath))
            .await
            .with_context(|| format!("{what} on the page"))?;
        // Marks the page, so that the next one can be told from it once it has loaded.
        self.client
            .execute("window.journeyLeaving = true;", vec![])
            .await?;
        element.click().await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let arrived = self
                .client
                .execute(
                    "return !window.journeyLeaving && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(arrived, Ok(Value::Bool(true))) {
                break;
            }
            ensure!(Instant::now() < deadline, "no new page after {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.check_accessibility().await
    }

    /// Presses the button with this text, then checks the page it leads to.
    async fn press(&mut self, button: &str) -> anyhow::Result<()> {
        let xpath = format!("//button[normalize-space(.)={}]", xpath_text(button));
        self.click_through(&xpath, &format!("the button \"{button}\""))
            .await
    }

    async fn follow(&mut self, link: &str) -> anyhow::Result<()> {
        let xpath = format!("//a[normalize-space(.)={}]", xpath_text(link));
        self.click_through(&xpath, &format!("the link \"{link}\""))
            .await
    }

    async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("an element {css}"))?
            .text()
            .await?)
    }

    async fn sign_out(&mut self) -> anyhow::Result<()> {
        self.press("Sign out").await
    }

    async fn sign_in(&mut self, email: &str) -> anyhow::Result<()> {
        self.goto("/login").await?;
        self.fill("Email address", email).await?;
        self.fill("Password", PASSWORD).await?;
        self.press("Sign in").await?;
        ensure!(self.path().await? == "/", "signed in as {email}");
        Ok(())
    }

    /// Runs axe-core on the page and fails on any WCAG 2.0/2.1 A or AA violation.
    async fn check_accessibility(&mut self) -> anyhow::Result<()> {
        let injected = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await?;
        if injected != Value::Bool(true) {
            self.client.execute(&self.axe, vec![]).await?;
        }
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                    .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                                              nodes: v.nodes.map(n => n.target.join(' ')) }))))
                    .catch(e => done([{ id: 'axe-error', help: String(e), nodes: [] }]));",
                vec![],
            )
            .await?;
        let path = self.path().await?;
        self.checked.push(path.clone());
        let violations = violations.as_array().cloned().unwrap_or_default();
        ensure!(
            violations.is_empty(),
            "accessibility violations on {path}:\n{}",
            serde_json::to_string_pretty(&violations)?
        );
        Ok(())
    }

    /// Keeps the evidence of a failure: a screenshot and the page source.
    async fn save_failure(&self) -> PathBuf {
        let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("journey");
        let _ = std::fs::create_dir_all(&folder);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(folder.join("failure.png"), png);
        }
        if let Ok(source) = self.client.source().await {
            let _ = std::fs::write(folder.join("failure.html"), source);
        }
        folder
    }
}

/// An invitation: the admin creates the account with `role`, and the link shown once.
async fn invite(
    browser: &mut Browser,
    name: &str,
    email: &str,
    role: &str,
) -> anyhow::Result<String> {
    browser.goto("/admin/users/new").await?;
    browser.fill("Name", name).await?;
    browser.fill("Email address", email).await?;
    browser.tick(role).await?;
    browser.press("Create user and invitation link").await?;
    let link = browser
        .client
        .find(Locator::Id("access-link-url"))
        .await
        .context("the invitation link is shown")?
        .prop("value")
        .await?
        .context("the link")?;
    Ok(link)
}

/// The invited person opens their link and sets a password, then signs out.
async fn accept(browser: &mut Browser, link: &str) -> anyhow::Result<()> {
    browser.goto(link).await?;
    browser.fill("New password", PASSWORD).await?;
    browser
        .fill("Type the new password again", PASSWORD)
        .await?;
    browser.press("Set password and sign in").await?;
    ensure!(browser.path().await? == "/", "the invitation was accepted");
    browser.sign_out().await
}

const PERFORMANCE: [&str; 9] = [
    "PC1", "PC2", "PC3", "PC4", "PC5", "PC6", "PC7", "PC8", "PC9",
];
const KNOWLEDGE: [&str; 12] = [
    "K1", "K2", "K3", "K4", "K5", "K6", "K7", "K8", "K9", "K10", "K11", "K12",
];

/// Ticks a criterion on the evidence form by its checkbox (its label holds the code and text).
async fn claim(browser: &Browser, code: &str) -> anyhow::Result<()> {
    let checkbox = browser
        .client
        .find(Locator::Id(&format!("claim-{code}")))
        .await
        .with_context(|| format!("the claim checkbox for {code}"))?;
    if !checkbox.is_selected().await? {
        checkbox.click().await?;
    }
    Ok(())
}

/// Judges every claim on the open evidence page met with the five checks, except `not_met`.
/// Signs off the candidate of the portfolio at `portfolio` as its assessor.
async fn sign_off(browser: &mut Browser, portfolio: &str) -> anyhow::Result<()> {
    browser.goto(portfolio).await?;
    browser.follow("Sign off").await?;
    browser
        .tick(attest::assessments::sign_off::DECLARATION)
        .await?;
    browser.press("Sign off as competent").await?;
    ensure!(
        browser.text("#progress").await?.starts_with("Competent"),
        "the candidate is competent"
    );
    Ok(())
}

async fn judge(browser: &mut Browser, codes: &[&str], not_met: Option<&str>) -> anyhow::Result<()> {
    for code in codes {
        if Some(*code) == not_met {
            browser
                .client
                .find(Locator::Id(&format!("not-met-{code}")))
                .await?
                .click()
                .await?;
            browser
                .fill(
                    &format!("Feedback for {code} (needed when not met)"),
                    "Say which tools you chose for the pipeline and why.",
                )
                .await?;
        } else {
            // One click: met records all five checks.
            browser
                .client
                .find(Locator::Id(&format!("met-{code}")))
                .await?
                .click()
                .await?;
        }
    }
    browser.press("Save judgements").await
}

/// The evidence form completed with Tab, Space and Enter (and typing into the text fields).
async fn evidence_by_keyboard(browser: &mut Browser) -> anyhow::Result<()> {
    let client = browser.client.clone();
    let active_id = || async {
        Ok::<String, anyhow::Error>(
            client
                .execute("return document.activeElement.id;", vec![])
                .await?
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    // Keys go to whatever has the focus, as on a real keyboard.
    let keys = |text: String| {
        let client = client.clone();
        async move {
            let mut actions = KeyActions::new("keyboard".into());
            for c in text.chars() {
                actions = actions
                    .then(KeyAction::Down { value: c })
                    .then(KeyAction::Up { value: c });
            }
            client.perform_actions(actions).await?;
            Ok::<(), anyhow::Error>(())
        }
    };
    let press = |key: Key| keys(char::from(key).to_string());
    let type_text = |text: &'static str| keys(text.to_owned());
    // Tab from the top of the page to each field in turn.
    let tab_to = async |id: &str| -> anyhow::Result<()> {
        for _ in 0..80 {
            if active_id().await? == id {
                return Ok(());
            }
            press(Key::Tab).await?;
        }
        bail!("Tab never reached #{id}")
    };
    tab_to("title").await?;
    type_text("Keyboard-only account of the release review").await?;
    tab_to("method").await?;
    type_text("Reflective account").await?;
    tab_to("activity_on").await?;
    type_text("10152026").await?;
    tab_to("statement").await?;
    type_text("I reviewed every release with the team and agreed one change to try each month.")
        .await?;
    tab_to("claim-K12").await?;
    press(Key::Space).await?;
    tab_to("declaration").await?;
    press(Key::Space).await?;
    // The next stop after the declaration is the submit button.
    press(Key::Tab).await?;
    let focused = client.active_element().await?.text().await?;
    ensure!(
        focused == "Submit for assessment",
        "after the declaration, Tab reaches \"{focused}\""
    );
    press(Key::Enter).await?;
    browser.check_accessibility().await
}

async fn journey(
    browser: &mut Browser,
    setup_link: &str,
    upload: &std::path::Path,
) -> anyhow::Result<()> {
    // First admin setup.
    browser.goto(setup_link).await?;
    browser.fill("Your name", "Ada Admin").await?;
    browser.fill("Email address", "ada@journey.example").await?;
    browser.fill("New password", PASSWORD).await?;
    browser
        .fill("Type the new password again", PASSWORD)
        .await?;
    browser.press("Create admin account").await?;
    ensure!(browser.path().await? == "/", "the first admin is signed in");

    // The admin creates a cohort and invites a candidate, an assessor and an IQA.
    browser.goto("/admin/cohorts").await?;
    browser.fill("Name", "Journey cohort").await?;
    browser.fill_date("Start date", "2026-09-01").await?;
    browser.fill_date("End date", "2027-07-31").await?;
    browser.press("Create cohort").await?;
    let cohort_path = browser.path().await?;
    ensure!(
        cohort_path.starts_with("/admin/cohorts/"),
        "the cohort page opens"
    );
    let candidate_link = invite(
        browser,
        "Cara Candidate",
        "cara@journey.example",
        "Candidate",
    )
    .await?;
    let assessor_link = invite(browser, "Asa Assessor", "asa@journey.example", "Assessor").await?;
    let iqa_link = invite(
        browser,
        "Ivy Quality",
        "ivy@journey.example",
        "Internal quality assurer",
    )
    .await?;

    // Enrols the candidate and assigns the assessor and the IQA.
    browser.goto(&cohort_path).await?;
    browser
        .tick("Cara Candidate (cara@journey.example)")
        .await?;
    browser.press("Enrol the ticked candidates").await?;
    browser.tick("Cara Candidate").await?;
    browser
        .choose("Assessor", "Asa Assessor (asa@journey.example)")
        .await?;
    browser
        .choose("IQA", "Ivy Quality (ivy@journey.example)")
        .await?;
    browser.press("Assign to the ticked enrolments").await?;
    browser.sign_out().await?;

    // Each accepts their invitation.
    for link in [&candidate_link, &assessor_link, &iqa_link] {
        accept(browser, link).await?;
    }

    // The sign-in form's error state.
    browser.goto("/login").await?;
    browser
        .fill("Email address", "cara@journey.example")
        .await?;
    browser.fill("Password", "not the password at all").await?;
    browser.press("Sign in").await?;
    ensure!(
        browser.path().await? == "/login",
        "a wrong password keeps the form"
    );

    // The candidate: evidence with a file, the form's error state, all 21 criteria over
    // several pieces, declared and submitted.
    browser.sign_in("cara@journey.example").await?;
    browser.follow("Lead DevOps activities").await?;
    let portfolio = browser.path().await?;
    browser.follow("Add evidence").await?;
    browser.press("Submit for assessment").await?;
    ensure!(
        browser
            .text(".error-summary")
            .await?
            .contains("Enter a title"),
        "an empty submission is refused with the reasons"
    );
    browser
        .fill("Title", "Release pipeline for the payments service")
        .await?;
    browser
        .choose("Assessment method", "Product (work output)")
        .await?;
    browser
        .fill_date("Date of the activity", "2026-10-01")
        .await?;
    browser
        .fill(
            "Statement",
            "I designed and led the release pipeline; the design is attached.",
        )
        .await?;
    browser.attach("Add files", upload).await?;
    for code in PERFORMANCE {
        claim(browser, code).await?;
    }
    browser.tick("This evidence is my own work").await?;
    browser.press("Submit for assessment").await?;
    let first = browser.path().await?;
    ensure!(
        first.starts_with("/evidence/"),
        "the first piece is submitted: {first}"
    );
    ensure!(
        browser
            .client
            .source()
            .await?
            .contains("pipeline-design.pdf"),
        "the uploaded file is listed"
    );

    browser.goto(&format!("{portfolio}/evidence/new")).await?;
    browser
        .fill("Title", "Professional discussion on DevOps strategy")
        .await?;
    browser
        .choose("Assessment method", "Professional discussion")
        .await?;
    browser
        .fill_date("Date of the activity", "2026-10-08")
        .await?;
    browser
        .fill(
            "Statement",
            "We discussed the strategy, the risks and how we improve.",
        )
        .await?;
    for code in &KNOWLEDGE[..11] {
        claim(browser, code).await?;
    }
    browser.tick("This evidence is my own work").await?;
    browser.press("Submit for assessment").await?;
    let second = browser.path().await?;
    ensure!(
        second.starts_with("/evidence/"),
        "the second piece is submitted"
    );

    browser.goto(&format!("{portfolio}/evidence/new")).await?;
    evidence_by_keyboard(browser).await?;
    let third = browser.path().await?;
    ensure!(
        third.starts_with("/evidence/"),
        "the keyboard-only piece is submitted: {third}"
    );
    browser.sign_out().await?;

    // The assessor judges one claim not met, with feedback.
    browser.sign_in("asa@journey.example").await?;
    browser.goto("/caseload").await?;
    browser.goto(&first).await?;
    judge(browser, &PERFORMANCE, Some("PC3")).await?;
    browser.goto(&second).await?;
    judge(browser, &KNOWLEDGE[..11], None).await?;
    browser.goto(&third).await?;
    judge(browser, &["K12"], None).await?;

    // The assessor records an observation for the candidate to confirm.
    browser.goto(&portfolio).await?;
    browser
        .follow("Add a record: observation, discussion or questioning")
        .await?;
    browser.fill("Title", "Observation: release day").await?;
    browser.choose("Assessment method", "Observation").await?;
    browser
        .fill_date("Date of the assessment", "2026-10-15")
        .await?;
    browser
        .fill(
            "Record",
            "Cara ran the release call: she checked the pipeline, agreed the go decision and briefed support.",
        )
        .await?;
    claim(browser, "PC1").await?;
    browser.press("Send to Cara Candidate to confirm").await?;
    let observation = browser.path().await?;
    ensure!(
        browser
            .text("#evidence-state")
            .await?
            .contains("Waiting for the candidate to confirm"),
        "the record waits for the candidate"
    );
    browser.sign_out().await?;

    // The candidate confirms the observation record and names a witness to the second piece.
    browser.sign_in("cara@journey.example").await?;
    browser.goto(&portfolio).await?;
    ensure!(
        browser
            .text("#records-to-confirm")
            .await?
            .contains("a record"),
        "the portfolio says a record waits"
    );
    browser.goto(&observation).await?;
    browser
        .tick("This is an accurate record of what I did")
        .await?;
    browser.press("Confirm the record").await?;
    browser.goto(&second).await?;
    browser
        .client
        .find(Locator::XPath(
            "//summary[normalize-space(.)='Ask a witness to confirm this evidence']",
        ))
        .await?
        .click()
        .await?;
    browser.fill("Witness's name", "Wren Lead").await?;
    browser
        .fill("Their email address", "wren@journey.example")
        .await?;
    browser
        .fill("Their role, such as team lead", "Head of platform")
        .await?;
    browser.press("Name the witness").await?;

    // The candidate reads the feedback, revises and resubmits.
    browser.goto(&first).await?;
    ensure!(
        browser
            .client
            .source()
            .await?
            .contains("Say which tools you chose"),
        "the candidate sees the feedback"
    );
    browser.press("Revise").await?;
    // The revise form shows the assessor's feedback; what was met stays met.
    ensure!(
        browser
            .text("#earlier-judgements")
            .await?
            .contains("PC3 Not met: Say which tools you chose"),
        "the revise form shows the feedback"
    );
    browser
        .fill(
            "Statement",
            "I designed and led the release pipeline. I chose GitLab CI and Argo CD because the teams knew them.",
        )
        .await?;
    browser.tick("This evidence is my own work").await?;
    browser.press("Submit for assessment").await?;
    let revised = browser.path().await?;
    ensure!(
        revised.starts_with("/evidence/") && revised != first,
        "the revision is submitted"
    );
    browser.goto(&portfolio).await?;
    let progress = browser.text("#progress").await?;
    ensure!(
        progress.contains("PC 8 of 9"),
        "the criteria met on the first version stay met: {progress}"
    );
    browser.sign_out().await?;

    // The assessor makes the witness's link, and judges the observation and the revision.
    browser.sign_in("asa@journey.example").await?;
    browser.goto(&second).await?;
    browser.press("Make a link to send Wren Lead").await?;
    let witness_link = browser.text("#witness-link code").await?;
    let witness_path = witness_link
        .find("/witness/")
        .map(|at| witness_link[at..].to_owned())
        .context("the witness link")?;
    browser.goto(&observation).await?;
    judge(browser, &["PC1"], None).await?;
    browser.goto(&revised).await?;
    judge(browser, &["PC3"], None).await?;
    browser.sign_out().await?;

    // The witness, with no account, confirms through the link.
    browser.goto(&witness_path).await?;
    browser.tick("Yes, it is accurate as written").await?;
    browser
        .fill("Your full name, as your signature", "Wren Lead")
        .await?;
    browser.press("Sign and send").await?;

    // The IQA samples the observation on the way and agrees with its judgement.
    browser.sign_in("ivy@journey.example").await?;
    browser.goto("/quality").await?;
    browser.follow("Observation: release day").await?;
    browser.tick("Agree with the judgements").await?;
    browser.press("Record sample").await?;
    ensure!(
        browser
            .text("#samples")
            .await?
            .contains("Agreed with the judgements"),
        "the sample is recorded"
    );
    browser.sign_out().await?;

    // The assessor sees the witness's confirmation and signs off.
    browser.sign_in("asa@journey.example").await?;
    browser.goto(&second).await?;
    ensure!(
        browser
            .text("#witnesses")
            .await?
            .contains("Confirmed by witness"),
        "the witness's answer shows"
    );
    sign_off(browser, &portfolio).await?;
    browser.sign_out().await?;

    // The IQA disagrees, with two actions.
    browser.sign_in("ivy@journey.example").await?;
    browser.goto("/quality").await?;
    browser
        .client
        .find(Locator::XPath("//input[starts-with(@id, 'disagree-')]"))
        .await?
        .click()
        .await?;
    browser
        .client
        .find(Locator::XPath("//textarea[starts-with(@id, 'actions-')]"))
        .await?
        .send_keys("Observe PC1 in person.\nCheck the date of the K12 evidence.")
        .await?;
    browser.press("Record review").await?;
    browser.sign_out().await?;

    // The assessor answers each action, then signs off again.
    browser.sign_in("asa@journey.example").await?;
    browser.goto(&portfolio).await?;
    ensure!(
        browser
            .text("#iqa-actions")
            .await?
            .contains("Observe PC1 in person."),
        "the portfolio shows the IQA's actions"
    );
    browser.goto(&format!("{portfolio}/sign-off")).await?;
    browser
        .fill(
            "What was done about action 1",
            "Observed PC1 at the November release.",
        )
        .await?;
    browser.press("Save answer 1").await?;
    browser
        .fill(
            "What was done about action 2",
            "The K12 evidence is dated 1 October 2026.",
        )
        .await?;
    browser.press("Save answer 2").await?;
    sign_off(browser, &portfolio).await?;
    browser.sign_out().await?;

    // The IQA reads the answers and agrees.
    browser.sign_in("ivy@journey.example").await?;
    browser.goto("/quality").await?;
    ensure!(
        browser
            .text(".earlier-actions")
            .await?
            .contains("Observed PC1 at the November release."),
        "the IQA sees the answers when reviewing the new sign-off"
    );
    browser
        .client
        .find(Locator::XPath("//input[starts-with(@id, 'agree-')]"))
        .await?
        .click()
        .await?;
    browser.press("Record review").await?;
    browser.sign_out().await?;

    // The admin opens the report and downloads the CSV.
    browser.sign_in("ada@journey.example").await?;
    browser.goto(&format!("{cohort_path}/report")).await?;
    let csv_path = browser
        .client
        .find(Locator::Id("csv-link"))
        .await?
        .attr("href")
        .await?
        .context("the CSV link")?;
    let csv = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.text()).then(done, e => done('failed: ' + e));",
            vec![json!(csv_path)],
        )
        .await?;
    let csv = csv.as_str().unwrap_or_default();
    let row = csv
        .lines()
        .find(|l| l.contains("cara@journey.example"))
        .with_context(|| format!("the candidate is in the CSV:\n{csv}"))?;
    ensure!(
        row.split(',').nth(4) == Some("verified"),
        "the CSV says verified: {row}"
    );

    // On a phone (390 px wide) every page fits the screen and still passes axe.
    browser.client.set_window_size(390, 844).await?;
    let cohort_id = cohort_path.trim_start_matches("/admin/cohorts/");
    for path in [
        "/".to_owned(),
        cohort_path.clone(),
        format!("{cohort_path}/report"),
        format!("/cohorts/{cohort_id}/sampling-plan"),
        "/admin/users".to_owned(),
        "/admin/audit".to_owned(),
        "/standards".to_owned(),
        portfolio.clone(),
        first.clone(),
    ] {
        browser.fits_width(&path).await?;
    }
    browser.sign_out().await?;
    browser.sign_in("asa@journey.example").await?;
    for path in [
        "/caseload".to_owned(),
        portfolio.clone(),
        format!("{portfolio}/sign-off"),
        format!("{portfolio}/records/new"),
        observation.clone(),
        revised.clone(),
    ] {
        browser.fits_width(&path).await?;
    }
    browser.sign_out().await?;
    browser.sign_in("cara@journey.example").await?;
    for path in [
        portfolio.clone(),
        second.clone(),
        format!("{portfolio}/evidence/new"),
    ] {
        browser.fits_width(&path).await?;
    }
    browser.sign_out().await?;
    browser.sign_in("ivy@journey.example").await?;
    browser.fits_width("/quality").await?;
    browser.fits_width(&first).await?;
    Ok(())
}

#[tokio::test]
async fn the_whole_journey_works_in_a_real_browser_and_every_page_passes_axe() {
    let database = ScratchDatabase::new();
    let (_server, base, setup_link) = start_attest(&database.url()).expect("attest serve");
    let (_driver, webdriver) = start_chromedriver().expect("chromedriver");
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journey-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let upload = scratch.join("pipeline-design.pdf");
    std::fs::write(
        &upload,
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    )
    .expect("upload file");
    let axe_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/node_modules/axe-core/axe.min.js"
    );
    let axe = std::fs::read_to_string(axe_path)
        .expect("axe-core is installed: npm ci --prefix tests/browser (bin/test does it)");
    let client = open_browser(&webdriver, &scratch.join("profile"))
        .await
        .expect("Chromium starts under chromedriver");
    let mut browser = Browser {
        client,
        base,
        axe,
        checked: Vec::new(),
    };
    let outcome = journey(&mut browser, &setup_link, &upload).await;
    if let Err(error) = outcome {
        let folder = browser.save_failure().await;
        let _ = browser.client.clone().close().await;
        panic!(
            "the journey failed: {error:#}\nscreenshot and page source: {}",
            folder.display()
        );
    }
    let checked = browser.checked.len();
    let _ = browser.client.close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(checked > 40, "axe checked {checked} pages");
}
