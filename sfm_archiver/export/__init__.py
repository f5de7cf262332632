"""`sfm-archiver export`: captures to CSV, TSV, XLSX, JSON lines, Parquet or ids (DESIGN.md section 12)."""

from sfm_archiver.export.run import DEDUPE, DEFAULT_SEGMENT, ExportRequest, ExportResult, run_export

__all__ = ["DEDUPE", "DEFAULT_SEGMENT", "ExportRequest", "ExportResult", "run_export"]
