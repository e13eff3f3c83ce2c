//! The CSV files the commands write beside their reports, through the `csv` crate (quoting
//! names that hold a comma), atomically.

use std::path::Path;

use imdb_data::AtomicFile;

use crate::error::XtaskError;

/// Writes `header` and `rows` to `path` as CSV; the file appears whole or not at all.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), XtaskError> {
    let encode = |e: csv::Error| XtaskError::io("cannot write", path, e);
    let mut writer = csv::Writer::from_writer(AtomicFile::create(path)?);
    writer.write_record(header).map_err(encode)?;
    for row in rows {
        writer.write_record(row).map_err(encode)?;
    }
    let file = writer
        .into_inner()
        .map_err(|e| XtaskError::io("cannot write", path, e.error()))?;
    Ok(file.commit()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_where_they_must_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let rows = vec![
            vec!["a, b".to_string(), "1".to_string()],
            vec!["say \"hi\"".to_string(), "2".to_string()],
        ];
        write_csv(&path, &["name", "n"], &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "name,n\n\"a, b\",1\n\"say \"\"hi\"\"\",2\n"
        );
    }
}
