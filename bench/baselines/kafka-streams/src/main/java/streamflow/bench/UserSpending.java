package streamflow.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.avro.Conversions;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * "User spending" (section 3.2.3 of the reference topology) in Kafka Streams: orders (key
 * order_id, value single-object Avro OrderEvent) -> keep PAID -> group by user_id (repartition
 * topic) -> exact BigDecimal sum per user in a RocksDB store -> every update to the output topic
 * (key user_id, value the total as "1234.50"). One stream thread, record cache off, so every
 * update is written, as the other systems of bench/user_spending.py write them.
 *
 * <p>Environment: BENCH_BROKER, BENCH_APP_ID, BENCH_INPUT_TOPIC, BENCH_OUTPUT_TOPIC,
 * BENCH_PROCESSING_GUARANTEE (at_least_once | exactly_once), BENCH_STATE_DIR,
 * BENCH_COMMIT_INTERVAL (seconds; default Kafka Streams' own: 100 ms under exactly-once,
 * 30 s otherwise), BENCH_ORDER_SCHEMA (path of order_event.avsc).
 */
public final class UserSpending {

  private UserSpending() {}

  /** Decodes Avro single-object encoding (C3 01, fingerprint, body) with the order schema. */
  static Deserializer<GenericRecord> orderDeserializer(Schema schema) {
    GenericData data = new GenericData();
    data.addLogicalTypeConversion(new Conversions.DecimalConversion());
    BinaryMessageDecoder<GenericRecord> decoder = new BinaryMessageDecoder<>(data, schema);
    return (topic, bytes) -> {
      try {
        return decoder.decode(bytes);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> env = System.getenv();
    Schema schema =
        new Schema.Parser()
            .parse(
                Files.readString(
                    Path.of(env.getOrDefault("BENCH_ORDER_SCHEMA", "schemas/order_event.avsc"))));
    Serde<GenericRecord> orders =
        Serdes.serdeFrom((topic, order) -> null, orderDeserializer(schema));

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            env.getOrDefault("BENCH_INPUT_TOPIC", "order-events"),
            Consumed.with(Serdes.String(), orders))
        .filter((orderId, order) -> "PAID".equals(order.get("status").toString()))
        .map(
            (orderId, order) ->
                org.apache.kafka.streams.KeyValue.pair(
                    order.get("user_id").toString(), ((BigDecimal) order.get("amount")).toPlainString()))
        .groupByKey(Grouped.with("orders-by-user", Serdes.String(), Serdes.String()))
        .aggregate(
            () -> "0.00",
            (userId, amount, total) -> new BigDecimal(total).add(new BigDecimal(amount)).toPlainString(),
            Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("user-spending-store")
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.String()))
        .toStream()
        .to(
            env.getOrDefault("BENCH_OUTPUT_TOPIC", "user-spending-summary"),
            Produced.with(Serdes.String(), Serdes.String()));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, env.getOrDefault("BENCH_APP_ID", "ks-user-spending"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env.getOrDefault("BENCH_BROKER", "127.0.0.1:9092"));
    props.put(StreamsConfig.STATE_DIR_CONFIG, env.getOrDefault("BENCH_STATE_DIR", "/tmp/ks-state"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    if ("exactly_once".equals(env.get("BENCH_PROCESSING_GUARANTEE"))) {
      props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    }
    String commit = env.get("BENCH_COMMIT_INTERVAL");
    if (commit != null && !commit.isEmpty()) {
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, (long) (Double.parseDouble(commit) * 1000));
    }

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close();
                  stopped.countDown();
                }));
    streams.setUncaughtExceptionHandler(
        e -> {
          e.printStackTrace();
          return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
              .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.start();
    stopped.await();
  }
}
