// Transaction benchmark client (Java Kafka client 3.9.1), run by scripts/bench-txn.sh.
//
//   idem BOOTSTRAP TOPIC COUNT          idempotent producer (acks=all), COUNT 100-byte records
//   txn  BOOTSTRAP TOPIC COUNT PER_TXN  transactional producer, transactions of PER_TXN records
//   lat  BOOTSTRAP TOPIC TXNS RATE      transactional producer, 10-record transactions at RATE
//                                       txn/s; a read_committed consumer measures each record's
//                                       send-to-receive latency
//
// Prints one line: "records/s txn/s" (idem/txn) or "p50_ms p99_ms" (lat).
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class TxnBench {
    static Producer<byte[], byte[]> producer(String bootstrap, String txnId) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pp.put(ProducerConfig.BATCH_SIZE_CONFIG, 65536);
        if (txnId != null) pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        Producer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer());
        if (txnId != null) p.initTransactions();
        return p;
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0], bootstrap = args[1], topic = args[2];
        byte[] value = new byte[100];
        if (mode.equals("lat")) {
            latency(bootstrap, topic, Integer.parseInt(args[3]), Integer.parseInt(args[4]));
            return;
        }
        long count = Long.parseLong(args[3]);
        int perTxn = mode.equals("txn") ? Integer.parseInt(args[4]) : 0;
        Producer<byte[], byte[]> p = producer(bootstrap, perTxn > 0 ? "bench-" + UUID.randomUUID() : null);
        // Warm-up: metadata, connections, producer id.
        if (perTxn > 0) p.beginTransaction();
        p.send(new ProducerRecord<>(topic, value)).get();
        if (perTxn > 0) p.commitTransaction();
        long start = System.nanoTime(), txns = 0;
        if (perTxn == 0) {
            for (long i = 0; i < count; i++) p.send(new ProducerRecord<>(topic, value));
            p.flush();
        } else {
            for (long i = 0; i < count; i += perTxn) {
                p.beginTransaction();
                for (int j = 0; j < perTxn; j++) p.send(new ProducerRecord<>(topic, value));
                p.commitTransaction();
                txns++;
            }
        }
        double secs = (System.nanoTime() - start) / 1e9;
        p.close();
        System.out.printf("%.0f %.1f%n", count / secs, txns / secs);
    }

    static void latency(String bootstrap, String topic, int txns, int rate) throws Exception {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> tps = new ArrayList<>();
        c.partitionsFor(topic).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
        c.assign(tps);
        c.seekToEnd(tps);
        tps.forEach(c::position);
        long total = (long) txns * 10;
        long[] lat = new long[(int) total];
        int[] got = {0};
        Thread reader = new Thread(() -> {
            long deadline = System.currentTimeMillis() + 300000;
            while (got[0] < total && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    long sent = ByteBuffer.wrap(r.value()).getLong();
                    if (got[0] < total) lat[got[0]++] = System.nanoTime() - sent;
                }
            }
        });
        reader.start();
        Producer<byte[], byte[]> p = producer(bootstrap, "bench-lat-" + UUID.randomUUID());
        long period = 1_000_000_000L / rate, next = System.nanoTime();
        for (int t = 0; t < txns; t++) {
            while (System.nanoTime() < next) Thread.sleep(0, 200_000);
            next += period;
            p.beginTransaction();
            for (int j = 0; j < 10; j++) {
                byte[] v = new byte[100];
                ByteBuffer.wrap(v).putLong(System.nanoTime());
                p.send(new ProducerRecord<>(topic, v));
            }
            p.commitTransaction();
        }
        reader.join();
        p.close();
        c.close();
        int n = got[0];
        if (n < total) throw new RuntimeException("read " + n + " of " + total + " records");
        Arrays.sort(lat, 0, n);
        System.out.printf("%.2f %.2f%n", lat[n / 2] / 1e6, lat[Math.min(n - 1, (int) (n * 0.99))] / 1e6);
    }
}
