//! Platform drivers: how to talk to a device's CLI over an interactive shell.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use russh::ChannelMsg;
use russh::client::{Handle, Msg};

use super::{KeyCheck, PushError};

/// The CLI dialects ztpd can push to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    CiscoIosxe,
    AristaEos,
}

impl Platform {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cisco_iosxe" | "cisco_ios" | "cisco_xe" => Some(Platform::CiscoIosxe),
            "arista_eos" => Some(Platform::AristaEos),
            _ => None,
        }
    }

    /// What the device prints when it refuses a line.
    fn rejections(self) -> &'static [&'static str] {
        match self {
            Platform::CiscoIosxe => &[
                "% Invalid input",
                "% Incomplete command",
                "% Ambiguous command",
                "% Unknown command",
                "% Bad mask",
            ],
            Platform::AristaEos => &[
                "% Invalid input",
                "% Incomplete command",
                "% Ambiguous command",
                "% Unavailable command",
                "% Not supported",
            ],
        }
    }
}

/// A prompt at the end of the output: `router#`, `router(config)#`,
/// `switch(config-if-Et1)#`, `router>`.
static PROMPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\n)([A-Za-z0-9][\w.\-@/:]*(?:\([\w.\-/ ]+\))?)([#>])\s*$")
        .unwrap_or_else(|e| unreachable!("prompt regex is valid: {e}"))
});

/// ANSI escape sequences some devices send.
static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]")
        .unwrap_or_else(|e| unreachable!("ANSI regex is valid: {e}"))
});

/// Bytes of a device's output kept for prompt detection: a prompt is looked for in the
/// tail only, so a device that streams without one costs no rescans of what it sent.
const TAIL: usize = 4 << 10;

/// A confirmation question a device asks before a destructive change (IOS XE's
/// `no username` asks `[confirm]`); answered with a newline.
static CONFIRM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\[confirm\]|\[yes/no\]:?)\s*$")
        .unwrap_or_else(|e| unreachable!("confirm regex is valid: {e}"))
});

/// An interactive shell on the device. What it keeps is bounded: the tail of the output
/// for prompt detection, a per-command output budget, and a capped transcript.
pub(super) struct Shell {
    channel: russh::Channel<Msg>,
    addr: String,
    timeout: Duration,
    output_limit: usize,
    transcript_limit: usize,
    /// The end of the output not yet consumed (at most [`TAIL`] bytes).
    pending: String,
    /// Bytes received since the last command was sent.
    received: usize,
    transcript: String,
    transcript_cut: bool,
    masks: Vec<String>,
}

impl Shell {
    pub(super) async fn open(
        handle: &Handle<KeyCheck>,
        addr: &str,
        settings: &crate::config::SshSettings,
        masks: Vec<String>,
    ) -> Result<Shell, PushError> {
        let session = |detail: String| PushError::Session {
            addr: addr.to_owned(),
            detail,
            transcript: String::new(),
        };
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| session(format!("cannot open a session channel: {e}")))?;
        channel
            .request_pty(false, "vt100", 511, 24, 0, 0, &[])
            .await
            .map_err(|e| session(format!("PTY request refused: {e}")))?;
        channel
            .request_shell(false)
            .await
            .map_err(|e| session(format!("shell request refused: {e}")))?;
        Ok(Shell {
            channel,
            addr: addr.to_owned(),
            timeout: settings.command_timeout,
            output_limit: settings.output_bytes,
            transcript_limit: settings.transcript_bytes,
            pending: String::new(),
            received: 0,
            transcript: String::new(),
            transcript_cut: false,
            masks: masks.into_iter().filter(|m| !m.is_empty()).collect(),
        })
    }

    fn record(&mut self, text: &str) {
        if self.transcript_cut {
            return;
        }
        let mut text = text.to_owned();
        for secret in &self.masks {
            text = text.replace(secret.as_str(), "********");
        }
        let room = self.transcript_limit.saturating_sub(self.transcript.len());
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.transcript.push_str(&text[..cut]);
            self.transcript
                .push_str("\n[transcript cut: over its size limit]\n");
            self.transcript_cut = true;
        } else {
            self.transcript.push_str(&text);
        }
    }

    fn transcript(&self) -> String {
        self.transcript.clone()
    }

    /// Keep only the tail of `pending`.
    fn trim(&mut self) {
        if self.pending.len() > TAIL {
            let mut cut = self.pending.len() - TAIL;
            while !self.pending.is_char_boundary(cut) {
                cut += 1;
            }
            self.pending.drain(..cut);
        }
    }

    /// Read until a prompt ends the output; returns the output before the prompt (its last
    /// [`TAIL`] bytes) and the prompt's last character (`#` or `>`).
    async fn until_prompt(&mut self, after: &str) -> Result<(String, char), PushError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(found) = PROMPT.captures(&self.pending) {
                let (start, mark) = match (found.get(0), found.get(2)) {
                    (Some(all), Some(mark)) => (all.start(), mark.as_str()),
                    _ => unreachable!("the prompt regex always captures the prompt"),
                };
                let out = self.pending.get(..start).unwrap_or_default().to_owned();
                let mark = if mark == ">" { '>' } else { '#' };
                self.pending.clear();
                return Ok((out, mark));
            }
            if CONFIRM.is_match(&self.pending) {
                self.pending.clear();
                self.write("", after).await?;
                continue;
            }
            let msg = tokio::time::timeout_at(deadline, self.channel.wait()).await;
            match msg {
                Err(_) => {
                    return Err(PushError::Timeout {
                        addr: self.addr.clone(),
                        command: after.to_owned(),
                        timeout_s: self.timeout.as_secs(),
                        transcript: self.transcript(),
                    });
                }
                Ok(Some(ChannelMsg::Data { data }))
                | Ok(Some(ChannelMsg::ExtendedData { data, .. })) => {
                    self.received += data.len();
                    if self.received > self.output_limit {
                        return Err(PushError::TooMuchOutput {
                            addr: self.addr.clone(),
                            command: after.to_owned(),
                            limit_kib: self.output_limit >> 10,
                            transcript: self.transcript(),
                        });
                    }
                    let text = String::from_utf8_lossy(&data).into_owned();
                    self.record(&text);
                    let clean = ANSI.replace_all(&text, "").replace('\r', "");
                    self.pending.push_str(&clean);
                    self.trim();
                }
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close)) | Ok(None) => {
                    return Err(PushError::Session {
                        addr: self.addr.clone(),
                        detail: format!("the device closed the session after `{after}`"),
                        transcript: self.transcript(),
                    });
                }
                Ok(Some(_)) => {}
            }
        }
    }

    async fn write(&mut self, line: &str, what: &str) -> Result<(), PushError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.channel
            .data(&bytes[..])
            .await
            .map_err(|e| PushError::Session {
                addr: self.addr.clone(),
                detail: format!("cannot send `{what}`: {e}"),
                transcript: self.transcript(),
            })
    }

    /// Send one line and wait for the next prompt; returns what the device printed
    /// (without the echo of the line).
    async fn send(&mut self, line: &str) -> Result<(String, char), PushError> {
        self.received = 0;
        self.write(line, line).await?;
        let (out, mark) = self.until_prompt(line).await?;
        // Devices echo the line; drop the first line of output if it is the echo.
        let answer = match out.split_once('\n') {
            Some((first, rest)) if first.trim_end() == line.trim_end() => rest.to_owned(),
            _ if out.trim_end() == line.trim_end() => String::new(),
            _ => out,
        };
        Ok((answer, mark))
    }

    /// Log in, turn paging off, enter configuration mode, send the lines, remove the
    /// temporary user, leave, check the user is gone, save. Returns the transcript.
    pub(super) async fn configure(
        &mut self,
        platform: Platform,
        push: &super::Push<'_>,
    ) -> Result<String, PushError> {
        let (_, mark) = self.until_prompt("login").await?;
        if mark == '>' {
            return Err(PushError::Session {
                addr: self.addr.clone(),
                detail: "logged in at user EXEC level (prompt ends in '>'); give the credential privilege 15".into(),
                transcript: self.transcript(),
            });
        }
        self.checked(platform, "terminal length 0", None).await?;
        self.checked(platform, "configure terminal", None).await?;
        for (i, line) in push.lines.iter().enumerate() {
            self.checked(platform, line, Some(i + 1)).await?;
        }
        if let Some(user) = &push.remove_user {
            self.checked(platform, &format!("no username {user}"), None)
                .await?;
        }
        self.checked(platform, "end", None).await?;
        if let Some(user) = &push.remove_user {
            let check = format!("show running-config | include ^username {user} ");
            let (out, _) = self.send(&check).await?;
            let still = out
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("username {user} ")));
            if still {
                return Err(PushError::UserNotRemoved {
                    addr: self.addr.clone(),
                    user: user.clone(),
                    check,
                    transcript: self.transcript(),
                });
            }
        }
        if push.save {
            self.checked(platform, "write memory", None).await?;
        }
        let _ = self.channel.data(&b"exit\n"[..]).await;
        Ok(self.transcript())
    }

    async fn checked(
        &mut self,
        platform: Platform,
        line: &str,
        number: Option<usize>,
    ) -> Result<(), PushError> {
        let (answer, _) = self.send(line).await?;
        if let Some(refusal) = platform.rejections().iter().find(|r| answer.contains(*r)) {
            let words = answer
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with(refusal))
                .unwrap_or(refusal)
                .to_owned();
            return Err(PushError::Rejected {
                addr: self.addr.clone(),
                number: number.unwrap_or(0),
                line: line.to_owned(),
                answer: words,
                transcript: self.transcript(),
            });
        }
        Ok(())
    }
}

/// The lines of a rendered config to send in configuration mode: blank lines and a final
/// `end` (the driver leaves config mode itself) are dropped.
pub fn config_lines(config: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = config
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.last().is_some_and(|l| l.trim() == "end") {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_found_at_the_end_only() {
        for p in [
            "router#",
            "router(config)#",
            "sw1(config-if-Et1)#",
            "r1>",
            "x\nrouter(config-line)# ",
        ] {
            assert!(PROMPT.is_match(p), "{p:?}");
        }
        for p in [
            "interface Gi1/0/1 # comment\nmore",
            "% Invalid input detected at '^' marker.",
            "",
        ] {
            assert!(!PROMPT.is_match(p), "{p:?}");
        }
    }

    #[test]
    fn config_lines_drop_blanks_and_final_end() {
        assert_eq!(
            config_lines("hostname r1\n\n!\n end \nend\n"),
            vec!["hostname r1", "!", " end"]
        );
    }
}
