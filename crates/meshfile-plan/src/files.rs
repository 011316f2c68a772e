//! Why a file or chart directory a Meshfile names cannot be used: the reader (the caller's
//! I/O) says it with these, the compiler places it in a diagnostic.

/// Why a file a Meshfile names (or a file of a chart directory it names) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// What the operating system said (the file is missing, not readable, ...).
    #[error("{0}")]
    Io(String),
    #[error("cannot read {path}: {why}")]
    Unreadable { path: String, why: String },
    #[error("it leads to {resolved}, outside the Meshfile's directory {root}")]
    Outside { resolved: String, root: String },
    #[error("it is not a regular file")]
    NotRegular,
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("it holds {size} bytes, more than the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("it grew beyond the limit of {0} bytes")]
    Grew(u64),
    #[error("it is not UTF-8 text")]
    NotText,
    #[error("{0} is not UTF-8 text")]
    NotTextFile(String),
    #[error("{0}: a chart's file names are UTF-8")]
    FileName(String),
    #[error(".helmignore line {line}: `{rule}`: Helm does not support `**`")]
    Helmignore { line: usize, rule: String },
    #[error("it holds more than {0} files and directories")]
    TooManyEntries(usize),
    #[error("`{0}` links back to a directory of the chart")]
    LinkBack(String),
    #[error(
        "`{rel}` is a link to {target}, outside the chart; helm package refuses such links too"
    )]
    LinkOutside { rel: String, target: String },
    #[error("its files hold more than the limit of {0} bytes")]
    ChartTooLarge(u64),
    /// One file of a chart directory.
    #[error("`{rel}`: {why}")]
    Member { rel: String, why: Box<FileError> },
}
