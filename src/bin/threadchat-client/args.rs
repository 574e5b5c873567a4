//! The client's command line. Plain logic, no I/O: `main` hands in the
//! arguments and `THREADCHAT_ADDR`, and gets back what to do or one line
//! saying what is wrong. Parsed by hand, like the server's (`config.rs`).

pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

pub const USAGE: &str = "\
Usage: threadchat-client [HOST:PORT]

A terminal client for threadchat: prints what the server sends, sends each
line you type. Type your name first, then /help for the commands.

Arguments:
  HOST:PORT       the server [default: 127.0.0.1:7878, or $THREADCHAT_ADDR]

Options:
  -h, --help      print this help
  -V, --version   print the version

End of input (Ctrl-D) or Ctrl-C sends /quit and leaves; Ctrl-C twice leaves
at once. On a terminal, lines that arrive while you type are drawn above
what you are typing (Backspace, Ctrl-U, Ctrl-W edit). Colours only on a
terminal, and never when NO_COLOR is set.
Exit status: 0 when the connection ended, 1 if the server cannot be reached,
2 for a bad command line, 130 for a second Ctrl-C.";

#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Connect(String),
    Help,
    Version,
}

/// Parses the arguments after the program name. `env_addr` is the value of
/// `THREADCHAT_ADDR`, if set: it replaces the default, and an argument
/// replaces it.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env_addr: Option<String>,
) -> Result<Invocation, String> {
    let mut addr = None;
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            option if option.starts_with('-') => {
                return Err(format!("unknown option {option} (try --help)"))
            }
            _ if addr.is_some() => {
                return Err(format!(
                    "unexpected argument {arg}: give one HOST:PORT (try --help)"
                ))
            }
            _ => addr = Some(check_addr(&arg, "")?),
        }
    }
    match (addr, env_addr.filter(|addr| !addr.is_empty())) {
        (Some(addr), _) => Ok(Invocation::Connect(addr)),
        (None, Some(env_addr)) => Ok(Invocation::Connect(check_addr(
            &env_addr,
            " (from THREADCHAT_ADDR)",
        )?)),
        (None, None) => Ok(Invocation::Connect(DEFAULT_ADDR.to_string())),
    }
}

/// Catches the mistakes that would otherwise surface as a puzzling
/// resolver error: a missing port, a port that is not a number.
fn check_addr(addr: &str, source: &str) -> Result<String, String> {
    let well_formed = match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    };
    if well_formed {
        Ok(addr.to_string())
    } else {
        Err(format!(
            "bad address {addr:?}{source}: expected HOST:PORT, e.g. {DEFAULT_ADDR}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str], env_addr: Option<&str>) -> Result<Invocation, String> {
        parse(
            args.iter().map(|arg| arg.to_string()),
            env_addr.map(str::to_string),
        )
    }

    fn connect(addr: &str) -> Result<Invocation, String> {
        Ok(Invocation::Connect(addr.to_string()))
    }

    #[test]
    fn the_address_comes_from_the_argument_then_the_environment_then_the_default() {
        assert_eq!(parse_args(&[], None), connect(DEFAULT_ADDR));
        assert_eq!(parse_args(&[], Some("")), connect(DEFAULT_ADDR));
        assert_eq!(parse_args(&[], Some("host:1")), connect("host:1"));
        assert_eq!(parse_args(&["[::1]:2"], Some("host:1")), connect("[::1]:2"));
    }

    #[test]
    fn help_and_version_win_wherever_they_are() {
        assert_eq!(parse_args(&["x:1", "--help"], None), Ok(Invocation::Help));
        assert_eq!(parse_args(&["-V"], None), Ok(Invocation::Version));
    }

    #[test]
    fn mistakes_get_one_line_naming_them() {
        assert_eq!(
            parse_args(&["--port", "7"], None),
            Err("unknown option --port (try --help)".to_string())
        );
        assert_eq!(
            parse_args(&["a:1", "b:2"], None),
            Err("unexpected argument b:2: give one HOST:PORT (try --help)".to_string())
        );
        assert_eq!(
            parse_args(&["localhost"], None),
            Err("bad address \"localhost\": expected HOST:PORT, e.g. 127.0.0.1:7878".to_string())
        );
        assert_eq!(
            parse_args(&[], Some("host:http")),
            Err(
                "bad address \"host:http\" (from THREADCHAT_ADDR): expected HOST:PORT, e.g. 127.0.0.1:7878"
                    .to_string()
            )
        );
        assert!(parse_args(&[":7878"], None).is_err());
        assert!(parse_args(&["host:70000"], None).is_err());
    }
}
