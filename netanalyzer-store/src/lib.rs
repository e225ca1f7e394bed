//! Record outputs and storage for netanalyzer. (Scaffold.)
