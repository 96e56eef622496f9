//! The `helpdesk` command line: parse the arguments, load the settings, run one command. The
//! commands are in `cli/`, one file each.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use helpdesk::app;
use helpdesk::config::Settings;

fn main() -> ExitCode {
    // Before the arguments are read, so `--help | head` ends quietly too.
    end_quietly_on_closed_output(true);
    let cli = cli::Cli::parse();
    let serving = cli.command.is_serve();
    if serving {
        end_quietly_on_closed_output(false);
        allow_many_connections();
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("helpdesk: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("helpdesk: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let logging = app::logging::init(&settings, serving, runtime.handle());
    let result = runtime.block_on(cli.command.run(settings));
    // The runtime still runs here, so the last traces can go out.
    logging.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("helpdesk: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `helpdesk ticket list | head` ends the way Unix tools do when the reader goes away, instead of
/// panicking in `println!` with a backtrace. Rust ignores SIGPIPE by default; this puts back the
/// default action (`quietly`) for one-shot commands only: `serve` must live on if its log pipe
/// closes, so it ignores the signal again (`!quietly`) and sees EPIPE as a write error.
fn end_quietly_on_closed_output(quietly: bool) {
    let action = if quietly {
        libc::SIG_DFL
    } else {
        libc::SIG_IGN
    };
    // SAFETY: called at the start of main, before any other thread exists; it only sets one
    // signal's disposition to a default or ignore.
    unsafe {
        libc::signal(libc::SIGPIPE, action);
    }
}

/// Each browser with a page open holds an event stream, so a server for a team needs more open
/// files than the usual soft limit of 1,024: the soft limit is raised to the hard one, as the
/// administrator allows (a service manager's `LimitNOFILE` sets both).
fn allow_many_connections() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: called at the start of main, before any other thread exists; getrlimit and
    // setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
