// Java Kafka client 3.9.1 against Produce v8+ per-record errors: one batch of 4 records
// (keys only on records 0 and 2) to a compacted topic, and one batch whose records 1 and 3 are
// two hours old to a topic with message.timestamp.before.max.ms=3600000. Prints, per record,
// the exception class and message its send future failed with:
// {"compacted":[[class,message],...],"timestamps":[...]}.
//
// usage: java -cp '.tools/jars/*' RecordErrors.java BOOTSTRAP COMPACTED_TOPIC TIMESTAMP_TOPIC
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class RecordErrors {
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

    static String sendBatch(Producer<byte[], byte[]> p, String topic, boolean keyless, boolean oldTs) {
        long now = System.currentTimeMillis();
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            byte[] key = keyless && i % 2 == 1 ? null : ("k" + i).getBytes(StandardCharsets.UTF_8);
            long ts = oldTs && i % 2 == 1 ? now - 7_200_000L : now;
            fs.add(p.send(new ProducerRecord<>(topic, 0, ts, key, ("v" + i).getBytes(StandardCharsets.UTF_8))));
        }
        p.flush();
        List<String> out = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) {
            try {
                f.get();
                out.add("[\"ok\",null]");
            } catch (ExecutionException | InterruptedException e) {
                Throwable c = e.getCause() == null ? e : e.getCause();
                out.add("[" + q(c.getClass().getSimpleName()) + "," + q(c.getMessage()) + "]");
            }
        }
        return "[" + String.join(",", out) + "]";
    }

    public static void main(String[] args) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        // One batch per send round: a long linger, flushed explicitly.
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 10000);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20000);
        try (Producer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            String compacted = sendBatch(p, args[1], true, false);
            String timestamps = sendBatch(p, args[2], false, true);
            System.out.println("{\"compacted\":" + compacted + ",\"timestamps\":" + timestamps + "}");
        }
    }
}
