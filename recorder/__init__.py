"""codepipeline-recorder: long-term, queryable memory of AWS CodePipeline."""

__version__ = "0.1.0"
