"""BERT / StructBERT (WordPiece) cross-encoder and bi-encoder export."""
