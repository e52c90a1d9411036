"""Reading BigQuery tables into Arrow (Storage Read API, REST fallback) and writing Arrow with load jobs."""
