//! Deterministic traffic generator. (Scaffold: the generator helper replaces it.)
