// Transactions in several states across a full cluster restart, with the Java Kafka client 3.9.1.
//
// prepare: on partition 0 of TOPIC, transactional id rs-commit commits c-0..2, rs-abort aborts a-0..2,
//   and rs-open (transaction.timeout.ms=TIMEOUT_MS) sends o-0..1 and halts the JVM with its
//   transaction open. Prints {"prepared":true}.
// state: the Admin client's ListTransactions and DescribeTransactions of the three ids, and the
//   values a read_committed consumer reads up to the last stable offset. Prints
//   {"list":{"id":"State",...},"describe":{"id":"State",...},"committed":[...],"lso":N}.
//
// usage: java -cp '.tools/jars/*' TxnRestart.java prepare BOOTSTRAP TOPIC TIMEOUT_MS
//        java -cp '.tools/jars/*' TxnRestart.java state BOOTSTRAP TOPIC
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class TxnRestart {
    static final List<String> IDS = List.of("rs-commit", "rs-abort", "rs-open");

    static Producer<String, String> producer(String bootstrap, String txnId, int timeoutMs) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 120000);
        Producer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
        p.initTransactions();
        return p;
    }

    static void txn(Producer<String, String> p, String topic, String prefix, int n) throws Exception {
        p.beginTransaction();
        for (int i = 0; i < n; i++) p.send(new ProducerRecord<>(topic, 0, null, prefix + "-" + i)).get();
    }

    static String q(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[1], topic = args[2];
        if (args[0].equals("prepare")) {
            Producer<String, String> p = producer(bootstrap, "rs-commit", 60000);
            txn(p, topic, "c", 3);
            p.commitTransaction();
            p.close();
            p = producer(bootstrap, "rs-abort", 60000);
            txn(p, topic, "a", 3);
            p.abortTransaction();
            p.close();
            p = producer(bootstrap, "rs-open", Integer.parseInt(args[3]));
            txn(p, topic, "o", 2);
            System.out.println("{\"prepared\":true}");
            System.out.flush();
            Runtime.getRuntime().halt(0);
        }
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        StringBuilder list = new StringBuilder("{"), describe = new StringBuilder("{");
        try (Admin admin = Admin.create(ap)) {
            int i = 0;
            for (TransactionListing t : admin.listTransactions().all().get()) {
                if (!IDS.contains(t.transactionalId())) continue;
                list.append(i++ > 0 ? "," : "").append(q(t.transactionalId())).append(":").append(q(t.state().toString()));
            }
            i = 0;
            for (Map.Entry<String, TransactionDescription> e : admin.describeTransactions(IDS).all().get().entrySet()) {
                describe.append(i++ > 0 ? "," : "").append(q(e.getKey())).append(":").append(q(e.getValue().state().toString()));
            }
        }
        List<String> committed = new ArrayList<>();
        long lso;
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (Consumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            lso = c.endOffsets(List.of(tp)).get(tp);
            long deadline = System.currentTimeMillis() + 60000;
            while (c.position(tp) < lso && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) committed.add(r.value());
            }
        }
        StringBuilder cs = new StringBuilder("[");
        for (int i = 0; i < committed.size(); i++) cs.append(i > 0 ? "," : "").append(q(committed.get(i)));
        System.out.println("{\"list\":" + list + "},\"describe\":" + describe + "},\"committed\":" + cs + "],\"lso\":" + lso + "}");
    }
}
