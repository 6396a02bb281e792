// ward example plugin `stats`: a tool with structured output.
//
// `describe {"numbers": [1, 2, 3]}` returns `structuredContent`
// `{count, mean, min, max, stddev}` (its JSON Schema is the tool's
// outputSchema) plus a text rendering for the model.
//
//   cargo xtask plugins && ward serve --plugins target/plugins   # tool `stats_describe`
use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Describe {
    /// The sample; at least one number.
    #[schemars(length(min = 1))]
    numbers: Vec<f64>,
}

/// Summary statistics of a sample.
#[derive(Serialize, JsonSchema)]
struct Summary {
    /// How many numbers.
    count: usize,
    /// Their arithmetic mean.
    mean: f64,
    /// The smallest.
    min: f64,
    /// The largest.
    max: f64,
    /// The population standard deviation.
    stddev: f64,
}

fn describe(a: Describe) -> Result<Structured<Summary>> {
    let n = a.numbers.len();
    if n == 0 {
        return Err(Error::invalid_params("numbers must not be empty"));
    }
    let mean = a.numbers.iter().sum::<f64>() / n as f64;
    let variance = a.numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let min = a.numbers.iter().copied().fold(f64::INFINITY, f64::min);
    let max = a.numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s = Summary { count: n, mean, min, max, stddev: variance.sqrt() };
    let text = format!(
        "count {}, mean {}, min {}, max {}, standard deviation {}",
        s.count, s.mean, s.min, s.max, s.stddev
    );
    Ok(Structured::new(s).text(text))
}

ward_guest::plugin!(|p| {
    p.tool("describe", "Summarises a list of numbers: count, mean, min, max and standard deviation", describe)
        .title("Describe numbers")
        .read_only(true)
        .idempotent(true);
});
