"""Streamlit dashboard over the MongoDB hot store."""
