#!/usr/bin/env python3
"""Reduced ETL job on PySpark local[2]: CSV.gz -> clean partitioned Parquet (zstd), then funnel + top 20."""
import os
import time

from pyspark.sql import SparkSession, functions as F, types as T

from _common import emit, parse_args

a = parse_args("pyspark")

# local mode: everything runs in the driver JVM; the machine has 24 GiB. run.sh launches this
# through spark-submit --driver-memory (so /usr/bin/time sees the JVM); run directly, the
# driver memory below applies.
spark = (
    SparkSession.builder.master("local[2]").appName("shoplake-bench")
    .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "16g"))
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.sql.parquet.compression.codec", "zstd")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")

schema = T.StructType([
    T.StructField("event_time", T.StringType()), T.StructField("event_type", T.StringType()),
    T.StructField("product_id", T.LongType()), T.StructField("category_id", T.LongType()),
    T.StructField("category_code", T.StringType()), T.StructField("brand", T.StringType()),
    T.StructField("price", T.DoubleType()), T.StructField("user_id", T.LongType()),
    T.StructField("user_session", T.StringType()),
])


def fill_unknown(c):
    return F.when(F.col(c).isNull() | (F.col(c) == ""), F.lit("unknown")).otherwise(F.col(c))


t0 = time.perf_counter()
df = spark.read.csv(a.input, header=True, schema=schema, mode="FAILFAST")
ts = F.to_timestamp("event_time", "yyyy-MM-dd HH:mm:ss 'UTC'")
out = (
    df.dropDuplicates()
    .filter(F.col("user_session").isNotNull() & (F.col("user_session") != "") & (F.col("price") > 0))
    .withColumn("event_time", ts)
    .withColumn("category_code", fill_unknown("category_code"))
    .withColumn("brand", fill_unknown("brand"))
    .withColumn("hour_of_day", F.hour("event_time"))
    # dayofweek is 1=Sun..7=Sat; ISO is 1=Mon..7=Sun
    .withColumn("day_of_week", ((F.dayofweek("event_time") + 5) % 7) + 1)
    .withColumn("event_date", F.to_date("event_time"))
)
out.write.mode("overwrite").partitionBy("event_date").option("compression", "zstd").parquet(a.out)
stage1 = time.perf_counter() - t0

t1 = time.perf_counter()
pq = spark.read.parquet(a.out)
rows_out = pq.count()
by_day = (pq.groupBy("event_date", "event_type").count().orderBy("event_date", "event_type").collect())
top = (pq.filter(F.col("event_type") == "purchase").groupBy("product_id").agg(F.count("*").alias("purchases"))
       .orderBy(F.col("purchases").desc(), F.col("product_id")).limit(20).collect())
stage2 = time.perf_counter() - t1

emit("pyspark", rows_out,
     [(str(r["event_date"]), r["event_type"], r["count"]) for r in by_day],
     [(r["product_id"], r["purchases"]) for r in top], stage1, stage2)
spark.stop()
