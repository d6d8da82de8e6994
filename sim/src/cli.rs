//! The command line: `wa-sim serve ...`. Secrets and the business number can come from the
//! same environment variables the router reads (`META_APP_SECRET`, `META_ACCESS_TOKEN`,
//! `META_PHONE_NUMBER_ID`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use switchboard_protocol::sim::{OnCall, OnPermissionRequest, PermissionGrant};

use crate::config::{default_webhook_retries, Business, Config, Timings, UserDefaults};

#[derive(Debug, Parser)]
#[command(
    name = "wa-sim",
    version,
    about = "A local stand-in for Meta's WhatsApp Cloud API and a WhatsApp user with a real WebRTC peer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Graph API and the control API, and send webhooks to the router.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen for Graph and control requests.
    #[arg(long, env = "WA_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The router's webhook URL.
    #[arg(
        long,
        env = "WA_SIM_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8080/webhook"
    )]
    pub webhook_url: String,
    /// The Meta app secret webhooks are signed with.
    #[arg(long, env = "META_APP_SECRET", hide_env_values = true)]
    pub app_secret: String,
    /// The bearer token Graph requests must carry.
    #[arg(long, env = "META_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: String,
    /// The business phone number id served under `/{version}/{id}/`.
    #[arg(long, env = "META_PHONE_NUMBER_ID")]
    pub phone_number_id: String,
    /// The business's display number (`metadata.display_phone_number`).
    #[arg(
        long,
        env = "WA_SIM_DISPLAY_PHONE_NUMBER",
        default_value = "15550783881"
    )]
    pub display_phone_number: String,
    /// The WhatsApp Business Account id (`entry[].id`).
    #[arg(long, env = "WA_SIM_WABA_ID", default_value = "102290129340398")]
    pub waba_id: String,
    /// The address the user's WebRTC peer binds and offers as its host candidate.
    #[arg(long, env = "WA_SIM_MEDIA_IP", default_value = "127.0.0.1")]
    pub media_ip: IpAddr,
    /// Start with calling disabled (`settings.calling.status = DISABLED`): 138000.
    #[arg(long)]
    pub calling_disabled: bool,

    /// How long the user's phone rings before they pick up (or decline).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub answer_delay: Duration,
    /// Users decline business calls (`REJECTED`, then `terminate`).
    #[arg(long, conflicts_with = "no_answer")]
    pub auto_reject: bool,
    /// Users never pick up; calls end after the ring timeout.
    #[arg(long)]
    pub no_answer: bool,
    /// How long an unanswered business call rings.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "45s")]
    pub ring_timeout: Duration,
    /// How long a user's call waits for the business to accept.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub accept_timeout: Duration,
    /// No media from the business this long after pick-up ends the call (138021).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    pub media_timeout: Duration,
    /// Media from the business stopping this long mid-call ends it (138021).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub media_gap_timeout: Duration,

    /// How users answer call-permission requests.
    #[arg(long, value_enum, default_value = "accept")]
    pub permission_reply: PermissionReplyArg,
    /// How long after a permission request the user answers.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub permission_reply_delay: Duration,
    /// The call permission users have before any request.
    #[arg(long, value_enum, default_value = "none")]
    pub initial_permission: InitialPermissionArg,

    /// Waits before each webhook retry, comma-separated (e.g. `0s,2s,10s,1m,5m`).
    #[arg(long, value_delimiter = ',', value_parser = humantime::parse_duration)]
    pub webhook_retries: Option<Vec<Duration>>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PermissionReplyArg {
    Accept,
    AcceptPermanent,
    Reject,
    /// Never answer (no `call_permission_reply`).
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InitialPermissionArg {
    None,
    Temporary,
    Permanent,
}

impl ServeArgs {
    pub fn into_config(self) -> Config {
        let on_call = if self.auto_reject {
            OnCall::Reject
        } else if self.no_answer {
            OnCall::NoAnswer
        } else {
            OnCall::Answer
        };
        let on_permission_request = match self.permission_reply {
            PermissionReplyArg::Accept => OnPermissionRequest::Accept,
            PermissionReplyArg::AcceptPermanent => OnPermissionRequest::AcceptPermanent,
            PermissionReplyArg::Reject => OnPermissionRequest::Reject,
            PermissionReplyArg::Off => OnPermissionRequest::Ignore,
        };
        let initial_permission = match self.initial_permission {
            InitialPermissionArg::None => PermissionGrant::None,
            InitialPermissionArg::Temporary => PermissionGrant::Temporary,
            InitialPermissionArg::Permanent => PermissionGrant::Permanent,
        };
        Config {
            listen: self.listen,
            webhook_url: self.webhook_url,
            app_secret: SecretString::from(self.app_secret),
            access_token: SecretString::from(self.access_token),
            business: Business {
                phone_number_id: self.phone_number_id,
                display_phone_number: self.display_phone_number,
                waba_id: self.waba_id,
                calling_enabled: !self.calling_disabled,
            },
            media_ip: self.media_ip,
            users: UserDefaults {
                on_call,
                on_permission_request,
                initial_permission,
            },
            timings: Timings {
                answer_delay: self.answer_delay,
                ring_timeout: self.ring_timeout,
                accept_timeout: self.accept_timeout,
                media_timeout: self.media_timeout,
                media_gap_timeout: self.media_gap_timeout,
                permission_reply_delay: self.permission_reply_delay,
                ..Timings::default()
            },
            webhook_retries: self.webhook_retries.unwrap_or_else(default_webhook_retries),
            ..Config::new(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_command_line_parses_into_a_config() {
        let cli = Cli::try_parse_from([
            "wa-sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--webhook-url",
            "http://127.0.0.1:8080/webhook",
            "--app-secret",
            "s",
            "--access-token",
            "t",
            "--phone-number-id",
            "123",
            "--answer-delay",
            "500ms",
            "--no-answer",
            "--permission-reply",
            "off",
            "--webhook-retries",
            "0s,1s,1m",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command;
        let config = args.into_config();
        assert!(config.validate().is_ok());
        assert_eq!(config.timings.answer_delay, Duration::from_millis(500));
        assert_eq!(config.users.on_call, OnCall::NoAnswer);
        assert_eq!(
            config.users.on_permission_request,
            OnPermissionRequest::Ignore
        );
        assert_eq!(config.webhook_retries.len(), 3);
        assert_eq!(config.business.phone_number_id, "123");
    }

    #[test]
    fn auto_reject_and_no_answer_exclude_each_other() {
        let result = Cli::try_parse_from([
            "wa-sim",
            "serve",
            "--app-secret",
            "s",
            "--access-token",
            "t",
            "--phone-number-id",
            "1",
            "--auto-reject",
            "--no-answer",
        ]);
        assert!(result.is_err());
    }
}
