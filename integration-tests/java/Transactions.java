// Java Kafka client 3.9.1 transactions against the transaction coordinator and partition leaders:
// a transactional producer commits, aborts and commits again on two partitions of TOPIC; then it opens a
// transaction that a second producer with the same transactional.id fences (its open transaction is
// aborted, its commit fails); the second producer commits. read_committed and read_uncommitted consumers
// read everything back; the second producer's transaction also commits offsets of group txn-group; the
// Admin client lists and describes the transaction and reads the group's offset.
// Prints one JSON line {"committed":[...],"uncommitted":[...],"fenced":"...","list":[...],"describe":{...}}.
//
// usage: java -cp '.tools/jars/*' Transactions.java BOOTSTRAP TOPIC TXN_ID
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class Transactions {
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

    static Producer<String, String> producer(String bootstrap, String txnId) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60000);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 120000);
        return new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
    }

    static void send(Producer<String, String> p, String topic, String prefix, int n) throws Exception {
        for (int i = 0; i < n; i++) {
            p.send(new ProducerRecord<>(topic, i % 2, "k" + i, prefix + "-" + i)).get();
        }
    }

    static List<String> consume(String bootstrap, String topic, String isolation) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<String> out = new ArrayList<>();
        try (Consumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            // read_committed end offsets are last stable offsets: wait until they cover everything.
            long deadline = System.currentTimeMillis() + 90000;
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) {
                    out.add(r.partition() + ":" + r.value());
                }
                boolean done = true;
                for (TopicPartition tp : tps) if (c.position(tp) < end.get(tp)) done = false;
                if (done) break;
            }
        }
        Collections.sort(out);
        return out;
    }

    static String list(List<String> l) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < l.size(); i++) b.append(i > 0 ? "," : "").append(q(l.get(i)));
        return b.append("]").toString();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], txnId = args[2];
        String fenced = "none";
        Producer<String, String> p1 = producer(bootstrap, txnId);
        p1.initTransactions();
        p1.beginTransaction();
        send(p1, topic, "c1", 4);
        p1.commitTransaction();
        p1.beginTransaction();
        send(p1, topic, "a", 4);
        p1.abortTransaction();
        p1.beginTransaction();
        send(p1, topic, "c2", 2);
        p1.commitTransaction();
        // An open transaction, fenced by a second producer with the same transactional id.
        p1.beginTransaction();
        send(p1, topic, "f", 2);
        Producer<String, String> p2 = producer(bootstrap, txnId);
        p2.initTransactions();
        try {
            p1.commitTransaction();
        } catch (KafkaException e) {
            fenced = e.getClass().getSimpleName();
        }
        p1.close(Duration.ofSeconds(5));
        p2.beginTransaction();
        send(p2, topic, "p2", 2);
        // Offsets committed with the transaction (AddOffsetsToTxn + TxnOffsetCommit).
        p2.sendOffsetsToTransaction(
            Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(3, "txn-meta")),
            new ConsumerGroupMetadata("txn-group"));
        p2.commitTransaction();
        p2.close(Duration.ofSeconds(10));

        List<String> committed = consume(bootstrap, topic, "read_committed");
        List<String> uncommitted = consume(bootstrap, topic, "read_uncommitted");

        StringBuilder ls = new StringBuilder("[");
        StringBuilder ds = new StringBuilder("{}");
        long groupOffsetOut = -1;
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            int i = 0;
            for (TransactionListing t : admin.listTransactions().all().get()) {
                ls.append(i++ > 0 ? "," : "").append("{\"id\":").append(q(t.transactionalId()))
                    .append(",\"state\":").append(q(t.state().toString()))
                    .append(",\"pid\":").append(t.producerId()).append("}");
            }
            long groupOffset = -1;
            long deadline = System.currentTimeMillis() + 60000;
            while (groupOffset < 0 && System.currentTimeMillis() < deadline) {
                OffsetAndMetadata om = admin.listConsumerGroupOffsets("txn-group")
                    .partitionsToOffsetAndMetadata().get().get(new TopicPartition(topic, 0));
                if (om != null) groupOffset = om.offset();
                else Thread.sleep(200);
            }
            groupOffsetOut = groupOffset;
            TransactionDescription d = admin.describeTransactions(List.of(txnId)).description(txnId).get();
            ds = new StringBuilder("{\"state\":").append(q(d.state().toString()))
                .append(",\"pid\":").append(d.producerId())
                .append(",\"epoch\":").append(d.producerEpoch())
                .append(",\"coordinator\":").append(d.coordinatorId())
                .append(",\"partitions\":").append(d.topicPartitions().size()).append("}");
        }
        ls.append("]");
        System.out.println("{\"committed\":" + list(committed) + ",\"uncommitted\":" + list(uncommitted)
            + ",\"fenced\":" + q(fenced) + ",\"group_offset\":" + groupOffsetOut + ",\"list\":" + ls + ",\"describe\":" + ds + "}");
    }
}
