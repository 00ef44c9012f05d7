// Java Kafka client 3.9.1 round trip: a default (idempotent, acks=all) producer writes COUNT records with
// keys, headers and timestamps to partition 0 of TOPIC using COMPRESSION, then a consumer reads them back
// from the beginning. Prints one JSON line {"acked":[...],"records":[...]}.
//
// usage: java -cp '.tools/jars/*' RoundTrip.java BOOTSTRAP TOPIC COUNT COMPRESSION
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.*;

public class RoundTrip {
    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static String str(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], compression = args[3];
        int count = Integer.parseInt(args[2]);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        List<Long> acked = new ArrayList<>();
        long baseTs = 1700000000000L;
        try (Producer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                byte[] key = i % 10 == 9 ? null : ("key-" + i).getBytes(StandardCharsets.UTF_8);
                byte[] value = ("value-" + i + "-" + "x".repeat(i % 50)).getBytes(StandardCharsets.UTF_8);
                ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, 0, baseTs + i, key, value);
                if (i % 2 == 0) {
                    r.headers().add("h1", ("v" + i).getBytes(StandardCharsets.UTF_8));
                    r.headers().add("empty", new byte[0]);
                    r.headers().add("null", null);
                }
                fs.add(p.send(r));
            }
            p.flush();
            for (Future<RecordMetadata> f : fs) acked.add(f.get().offset());
        }
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        StringBuilder recs = new StringBuilder();
        int n = 0;
        try (Consumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long deadline = System.currentTimeMillis() + 60000;
            while (n < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    StringBuilder hs = new StringBuilder();
                    for (Header h : r.headers()) {
                        if (hs.length() > 0) hs.append(',');
                        hs.append('[').append(q(h.key())).append(',').append(q(str(h.value()))).append(']');
                    }
                    if (n++ > 0) recs.append(',');
                    recs.append("{\"offset\":").append(r.offset())
                        .append(",\"key\":").append(q(str(r.key())))
                        .append(",\"value\":").append(q(str(r.value())))
                        .append(",\"headers\":[").append(hs).append(']')
                        .append(",\"timestamp\":").append(r.timestamp())
                        .append(",\"timestamp_type\":").append(q(r.timestampType().name))
                        .append('}');
                }
            }
        }
        StringBuilder a = new StringBuilder();
        for (Long o : acked) { if (a.length() > 0) a.append(','); a.append(o); }
        System.out.println("{\"acked\":[" + a + "],\"records\":[" + recs + "]}");
    }
}
