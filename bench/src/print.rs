//! The summary as text, section by section; the lines are compared against earlier runs:
//! keep them.

use serde_json::Value;

/// A string of the summary, empty when absent.
fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Prints the summary ([`crate::summary::summary`]) for a reader.
pub fn print_summary(s: &Value) {
    println!(
        "{} | workload {} | {} jobs ({}) | {} idle | {} s | {} worker(s) x pool {} | {} tick(s)",
        text(&s["backend"]),
        text(&s["workload"]),
        s["jobs"],
        text(&s["execution_type"]),
        s["registered_idle_jobs"],
        s["duration_s"],
        s["workers"],
        s["pool_size"],
        s["ticks"]
    );
    print_postgres(s);
    if !s["deadline_s"].is_null() {
        println!("startingDeadlineSeconds {}", s["deadline_s"]);
    }
    print_rates(s);
    print_outcome(s);
    if !s["overload"].is_null() {
        print_overload(&s["overload"]);
    }
    print_processes(s);
    print_statements(s);
    println!("logs                   {}", text(&s["logs"]));
}

/// Fires due, executions per second and their lag, overall and (over more than a minute,
/// or for the overload workload) by minute.
fn print_rates(s: &Value) {
    println!("fires due/s            {}", s["fires_due_per_s"]);
    println!("executions/s (target)  {}", s["executions_per_s_at_target"]);
    println!(
        "executions/s (history) {}",
        s["executions_per_s_in_history"]
    );
    println!(
        "lag ms                 p50 {}  p90 {}  p99 {}  max {}",
        s["lag_ms"]["p50"], s["lag_ms"]["p90"], s["lag_ms"]["p99"], s["lag_ms"]["max"]
    );
    let overload = !s["overload"].is_null();
    let by_minute = |key: &str, line: &dyn Fn(&Value) -> String| {
        s[key]
            .as_array()
            .filter(|m| m.len() > 1 || overload)
            .map(|m| m.iter().map(line).collect::<Vec<_>>().join("  "))
    };
    if let Some(line) = by_minute("lag_ms_by_minute", &|m| {
        format!("{}: {}/{}", m["minute"], m["p50"], m["p99"])
    }) {
        println!("lag ms by minute p50/p99  {line}");
    }
    if let Some(line) = by_minute("executions_per_s_by_minute", &|m| {
        format!("{}: {}", m["minute"], m["executions_per_s"])
    }) {
        println!("executions/s by minute (target)  {line}");
    }
}

/// Fires missed and delivered twice, the executions by status, and the history written and
/// deleted.
fn print_outcome(s: &Value) {
    println!("missed fires           {}", s["missed_fires"]);
    println!("duplicate deliveries   {}", s["duplicate_deliveries"]);
    println!("delivered after window {}", s["delivered_after_window"]);
    if let Some(statuses) = s["executions_by_status"].as_object() {
        let line: Vec<String> = statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("executions by status   {}", line.join("  "));
    }
    println!("history rows written   {}", s["history_rows_written"]);
    if !s["old_history_left"].is_null() {
        println!(
            "old history left       {} fires (the day past retention; 0: its partition was dropped)",
            s["old_history_left"]
        );
    }
    if !s["history_deleted_per_s"].is_null() {
        println!(
            "history deleted/s      {} (retention {} s)",
            s["history_deleted_per_s"], s["retention_s"]
        );
    }
}

/// Each process's CPU and memory; over more than one minute, whether memory is flat: each
/// process's RSS by minute.
fn print_processes(s: &Value) {
    println!("process                cpu (cores)  rss MiB start/end/peak");
    let Some(processes) = s["processes"].as_array() else {
        return;
    };
    for p in processes {
        let rss = if p.get("rss_mib_peak").is_some() {
            format!(
                "{}/{}/{}",
                p["rss_mib_start"], p["rss_mib_end"], p["rss_mib_peak"]
            )
        } else {
            String::new()
        };
        println!(
            "  {:<20} {:<12} {}",
            text(&p["process"]),
            p["cpu_cores"].to_string(),
            rss
        );
    }
    for p in processes {
        if let Some(series) = p["rss_mib_by_minute"].as_array().filter(|m| m.len() > 1) {
            let line: Vec<String> = series
                .iter()
                .enumerate()
                .map(|(i, mib)| format!("{}: {mib}", i + 1))
                .collect();
            println!(
                "  {:<20} rss MiB by minute  {}",
                text(&p["process"]),
                line.join("  ")
            );
        }
    }
}

/// The server's settings, on as few lines as fit.
fn print_postgres(s: &Value) {
    let Some(settings) = s["postgres_settings"].as_object() else {
        return;
    };
    println!(
        "postgres               cluster {}",
        s["cluster"].as_str().unwrap_or("")
    );
    let pairs: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
        .collect();
    let mut line = String::new();
    for pair in pairs {
        if !line.is_empty() && line.len() + pair.len() > 90 {
            println!("  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&pair);
    }
    if !line.is_empty() {
        println!("  {line}");
    }
}

/// The overload workload's phases, backlog, drain and memory.
fn print_overload(o: &Value) {
    if let Some(phases) = o["phases"].as_array() {
        for p in phases {
            println!(
                "phase {:<9} {} jobs x {} s: delivered {}/s, lag ms p50 {} p99 {} max {}",
                p["phase"].as_str().unwrap_or(""),
                p["jobs"],
                p["secs"],
                p["delivered_per_s"],
                p["lag_ms"]["p50"],
                p["lag_ms"]["p99"],
                p["lag_ms"]["max"]
            );
        }
    }
    let drop = &o["drop"];
    println!(
        "load dropped at        {} s (last job deactivated at {:+.1} s from it; {} forced)",
        drop["at_s"],
        drop["completed_after_s"].as_f64().unwrap_or(0.0),
        drop["forced_jobs"]
    );
    let peak = &o["backlog_peak"];
    println!(
        "backlog peak           QUEUED {} (over 1 s late {} at {} s)  redis ready {} upcoming {} processing {}",
        peak["queued"],
        peak["queued_late"],
        peak["queued_late_at_s"],
        peak["redis_ready"],
        peak["redis_upcoming"],
        peak["redis_processing"]
    );
    match o["drain_s_after_drop"].as_f64() {
        Some(secs) => println!(
            "drained                {secs} s after the drop (QUEUED over 1 s late < {})",
            o["drain_threshold_queued_late"]
        ),
        None => println!(
            "drained                not by the window's end (QUEUED over 1 s late: {}, threshold {})",
            o["queued_late_at_end"], o["drain_threshold_queued_late"]
        ),
    }
    println!(
        "redis used_memory MiB  start {}  peak {}",
        o["redis_used_memory_mib"]["start"], o["redis_used_memory_mib"]["peak"]
    );
    if let Some(series) = o["rss_mib_every_10s"].as_array() {
        let line: Vec<String> = series
            .iter()
            .map(|p| {
                format!(
                    "{} {}/{}",
                    p["process"].as_str().unwrap_or(""),
                    p["peak"],
                    p["last"]
                )
            })
            .collect();
        println!("rss MiB peak/last      {}", line.join("  "));
    }
    println!(
        "deactivated jobs' fires after the drop {}",
        o["fires_of_deactivated_jobs_after_the_drop"]
    );
    println!(
        "backlog count ms       mean {}  max {}",
        o["backlog_count_ms"]["mean"], o["backlog_count_ms"]["max"]
    );
    if o["samples_failed"].as_u64().unwrap_or(0) > 0 {
        println!("backlog samples failed {}", o["samples_failed"]);
    }
}

/// The statements that took the most time in the window, or why there are none.
fn print_statements(s: &Value) {
    if let Some(note) = s["top_statements_note"].as_str() {
        println!("top statements         ({note})");
        return;
    }
    let Some(top) = s["top_statements"].as_array() else {
        return;
    };
    println!("top statements in the window");
    println!(
        "  {:>10} {:>9} {:>8} {:>9} {:>5}  query",
        "calls", "total ms", "mean ms", "rows", "share"
    );
    for t in top {
        println!(
            "  {:>10} {:>9} {:>8} {:>9} {:>5}  {}",
            t["calls"].to_string(),
            t["total_ms"].to_string(),
            t["mean_ms"].to_string(),
            t["rows"].to_string(),
            t["share"].to_string(),
            t["query"].as_str().unwrap_or("")
        );
    }
}
