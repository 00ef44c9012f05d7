// Consume-transform-produce with the Java Kafka client 3.9.1, exactly once: a read_committed consumer
// (assigned every partition of INPUT, offsets of group GROUP) and a transactional producer that writes
// each input record transformed ("out:" + value, same key) to OUTPUT and commits the consumed offsets
// with sendOffsetsToTransaction, in transactions of about 50 records.
//
// The test paces it with GATE_FILE (a number; missing = no limit): no new transaction starts while
// the committed input position (sum over partitions) is at or past it. Progress on stdout:
// "open <committed> <n>" once a transaction's records are written (its commit follows after a pause),
// "committed <committed>" after each commit, and a final JSON line {"done":true,...} once every input
// partition's end offset is committed. Any error but fencing aborts (or re-creates the producer,
// which aborts through initTransactions) and rewinds the consumer to the committed offsets.
//
// usage: java -cp '.tools/jars/*' Eos.java run BOOTSTRAP INPUT OUTPUT GROUP TXN_ID GATE_FILE
//        java -cp '.tools/jars/*' Eos.java verify BOOTSTRAP INPUT OUTPUT GROUP
//   verify prints {"values":[...],"uncommitted":N,"committed":{"p":o,...},"input_end":{"p":o,...}}:
//   OUTPUT read with read_committed (values), its read_uncommitted record count, the group's
//   committed offsets and INPUT's end offsets.
import java.nio.file.*;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.*;

public class Eos {
    static void log(String s) {
        System.err.println(new Date() + " " + s);
    }

    static void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static Producer<String, String> producer(String bootstrap, String txnId) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60000);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 120000);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        Producer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
        p.initTransactions();
        return p;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String isolation) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 50);
        cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 120000);
        return new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
    }

    static List<TopicPartition> partitions(Consumer<?, ?> c, String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (PartitionInfo p : c.partitionsFor(topic, Duration.ofSeconds(120))) {
            tps.add(new TopicPartition(topic, p.partition()));
        }
        return tps;
    }

    /// Seeks every partition to the group's committed offset (or the beginning); returns their sum.
    static long rewind(Consumer<?, ?> c, List<TopicPartition> tps) {
        Map<TopicPartition, OffsetAndMetadata> committed = c.committed(new HashSet<>(tps));
        long sum = 0;
        for (TopicPartition tp : tps) {
            OffsetAndMetadata om = committed.get(tp);
            if (om == null) {
                c.seekToBeginning(List.of(tp));
                sum += c.position(tp);
            } else {
                c.seek(tp, om.offset());
                sum += om.offset();
            }
        }
        return sum;
    }

    static long gate(Path file) {
        try {
            return Long.parseLong(Files.readString(file).trim());
        } catch (NoSuchFileException e) {
            return Long.MAX_VALUE;
        } catch (Exception e) {
            return -1; // being written: wait
        }
    }

    static void run(String bootstrap, String input, String output, String group, String txnId, Path gateFile)
        throws Exception {
        // The producer first: initTransactions aborts what a crashed predecessor left open, which
        // also resolves its pending offsets before the consumer asks for them.
        Producer<String, String> p = producer(bootstrap, txnId);
        KafkaConsumer<String, String> c = consumer(bootstrap, group, "read_committed");
        List<TopicPartition> tps = partitions(c, input);
        c.assign(tps);
        Map<TopicPartition, Long> end = c.endOffsets(tps);
        long endSum = 0;
        for (long e : end.values()) endSum += e;
        long committed = rewind(c, tps);
        int txns = 0, aborts = 0;
        out("committed " + committed);
        while (committed < endSum) {
            if (committed >= gate(gateFile)) {
                Thread.sleep(50);
                continue;
            }
            try {
                p.beginTransaction();
                int n = 0;
                long deadline = System.currentTimeMillis() + 10000;
                while (n < 50 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        p.send(new ProducerRecord<>(output, r.key(), "out:" + r.value()));
                        n++;
                    }
                    long pos = 0;
                    for (TopicPartition tp : tps) pos += c.position(tp);
                    if (pos >= endSum) break;
                }
                p.flush(); // the records are in the output log before "open" is reported
                out("open " + committed + " " + n);
                Thread.sleep(100);
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                long pos = 0;
                for (TopicPartition tp : tps) {
                    long o = c.position(tp);
                    offsets.put(tp, new OffsetAndMetadata(o));
                    pos += o;
                }
                p.sendOffsetsToTransaction(offsets, new ConsumerGroupMetadata(group));
                p.commitTransaction();
                committed = pos;
                txns++;
                out("committed " + committed);
            } catch (ProducerFencedException e) {
                log("fenced: " + e);
                System.exit(3);
            } catch (KafkaException e) {
                aborts++;
                log("transaction failed, aborting: " + e);
                try {
                    p.abortTransaction();
                } catch (KafkaException e2) {
                    log("abort failed, new producer: " + e2);
                    p.close(Duration.ofSeconds(5));
                    p = producer(bootstrap, txnId);
                }
                committed = rewind(c, tps);
            }
        }
        p.close(Duration.ofSeconds(30));
        c.close();
        out("{\"done\":true,\"committed\":" + committed + ",\"txns\":" + txns + ",\"aborts\":" + aborts + "}");
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') b.append('\\').append(ch);
            else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
            else b.append(ch);
        }
        return b.append('"').toString();
    }

    /// Every record of `topic` from the beginning to its end offsets (last stable offsets for read_committed).
    static List<String> readAll(String bootstrap, String topic, String isolation) {
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(bootstrap, null, isolation)) {
            List<TopicPartition> tps = partitions(c, topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 120000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : tps) if (c.position(tp) < end.get(tp)) done = false;
                if (done) return values;
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) values.add(r.value());
            }
            throw new RuntimeException("did not reach the end offsets of " + topic + " in 120 s");
        }
    }

    static String offsets(Map<TopicPartition, Long> m) {
        TreeMap<Integer, Long> sorted = new TreeMap<>();
        m.forEach((tp, o) -> sorted.put(tp.partition(), o));
        StringBuilder b = new StringBuilder("{");
        int i = 0;
        for (Map.Entry<Integer, Long> e : sorted.entrySet()) {
            b.append(i++ > 0 ? "," : "").append(q(e.getKey().toString())).append(":").append(e.getValue());
        }
        return b.append("}").toString();
    }

    static void verify(String bootstrap, String input, String output, String group) throws Exception {
        List<String> values = readAll(bootstrap, output, "read_committed");
        int uncommitted = readAll(bootstrap, output, "read_uncommitted").size();
        Map<TopicPartition, Long> committed = new HashMap<>();
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> committed.put(tp, om.offset()));
        }
        Map<TopicPartition, Long> end;
        try (KafkaConsumer<String, String> c = consumer(bootstrap, null, "read_committed")) {
            end = c.endOffsets(partitions(c, input));
        }
        StringBuilder vs = new StringBuilder("[");
        for (int i = 0; i < values.size(); i++) vs.append(i > 0 ? "," : "").append(q(values.get(i)));
        out("{\"values\":" + vs + "],\"uncommitted\":" + uncommitted + ",\"committed\":" + offsets(committed)
            + ",\"input_end\":" + offsets(end) + "}");
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("run")) run(args[1], args[2], args[3], args[4], args[5], Path.of(args[6]));
        else verify(args[1], args[2], args[3], args[4]);
    }
}
