// Java client 3.9.1 group through a kill -9 of its coordinator. Two members (range, manual commitSync of
// what they processed after every poll) consume the first half of the records; once the group has committed
// them, the program asks Admin.describeConsumerGroups for the coordinator and kills that broker's process
// with `kill -9` (PIDS maps broker id to pid), produces the second half and waits until everything is
// processed and committed. Prints one JSON line:
// {"killed":id,"new_coordinator":id,"generations_before":[g,g],"generations_after":[g,g],
//  "callbacks_before":n,"callbacks_after":n,"missing":[...],"duplicates":n,"committed":{"p":offset}}
//
// usage: java -cp '.tools/jars/*' CoordinatorFailover.java BOOTSTRAP TOPIC GROUP PARTITIONS PER_PARTITION PIDS
//        PIDS: id:pid,id:pid,...
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class CoordinatorFailover {
    static final Map<String, Integer> processed = new ConcurrentHashMap<>();
    static final AtomicInteger callbacks = new AtomicInteger();

    static class Member implements Runnable, ConsumerRebalanceListener {
        final Properties props;
        final String topic;
        final Thread thread = new Thread(this);
        volatile boolean stop;
        volatile int generation = -1;
        volatile Throwable failure;

        Member(Properties props, String topic) {
            this.props = props;
            this.topic = topic;
        }

        public void onPartitionsRevoked(Collection<TopicPartition> ps) {
            callbacks.incrementAndGet();
        }

        public void onPartitionsAssigned(Collection<TopicPartition> ps) {
            callbacks.incrementAndGet();
        }

        public void run() {
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
                c.subscribe(List.of(topic), this);
                while (!stop) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
                    generation = c.groupMetadata().generationId();
                    if (rs.isEmpty()) continue;
                    Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
                    for (ConsumerRecord<String, String> r : rs) {
                        processed.merge(r.partition() + "/" + r.offset(), 1, Integer::sum);
                        done.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    }
                    try {
                        c.commitSync(done);
                    } catch (org.apache.kafka.common.errors.RetriableException | CommitFailedException e) {
                        // The next batch's commit carries later offsets; a rebalance re-reads from the last commit.
                    }
                }
            } catch (Throwable t) {
                failure = t;
            }
        }
    }

    static void produce(String bootstrap, String topic, int partitions, int from, int to) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        try (Producer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int part = 0; part < partitions; part++)
                for (int i = from; i < to; i++) fs.add(p.send(new ProducerRecord<>(topic, part, null, "p" + part + "-" + i)));
            for (Future<RecordMetadata> f : fs) f.get();
        }
    }

    static Map<Integer, Long> committed(Admin admin, String group) throws Exception {
        Map<Integer, Long> out = new TreeMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().entrySet())
            if (e.getValue() != null) out.put(e.getKey().partition(), e.getValue().offset());
        return out;
    }

    interface Cond {
        boolean ok() throws Exception;
    }

    static void await(String what, long ms, List<Member> ms_, Cond c) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        while (true) {
            for (Member m : ms_) if (m.failure != null) throw new RuntimeException("member failed", m.failure);
            try {
                if (c.ok()) return;
            } catch (ExecutionException e) {
                // coordinator moving: ask again
            }
            if (System.currentTimeMillis() > deadline) throw new RuntimeException("timed out waiting for " + what);
            Thread.sleep(100);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2];
        int partitions = Integer.parseInt(args[3]), per = Integer.parseInt(args[4]);
        Map<Integer, String> pids = new HashMap<>();
        for (String kv : args[5].split(",")) pids.put(Integer.parseInt(kv.split(":")[0]), kv.split(":")[1]);
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10000);
        List<Member> members = new ArrayList<>();
        try (Admin admin = Admin.create(ap)) {
            produce(bootstrap, topic, partitions, 0, per / 2);
            for (int i = 0; i < 2; i++) {
                Properties p = new Properties();
                p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
                p.put(ConsumerConfig.CLIENT_ID_CONFIG, "m" + i);
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
                p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
                p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30000);
                p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 300);
                p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10);
                Member m = new Member(p, topic);
                members.add(m);
                m.thread.start();
            }
            int half = per / 2;
            await("first half processed and committed", 90_000, members, () -> {
                Map<Integer, Long> c = committed(admin, group);
                for (int part = 0; part < partitions; part++) if (c.getOrDefault(part, -1L) != half) return false;
                return members.get(0).generation > 0 && members.get(0).generation == members.get(1).generation;
            });
            int[] gensBefore = {members.get(0).generation, members.get(1).generation};
            int callbacksBefore = callbacks.get();
            int killed = admin.describeConsumerGroups(List.of(group)).all().get().get(group).coordinator().id();
            new ProcessBuilder("kill", "-9", pids.get(killed)).inheritIO().start().waitFor();

            produce(bootstrap, topic, partitions, half, per);
            await("every record processed and committed", 120_000, members, () -> {
                if (processed.size() < partitions * per) return false;
                Map<Integer, Long> c = committed(admin, group);
                for (int part = 0; part < partitions; part++) if (c.getOrDefault(part, -1L) != per) return false;
                return true;
            });
            int newCoordinator = admin.describeConsumerGroups(List.of(group)).all().get().get(group).coordinator().id();
            int[] gensAfter = {members.get(0).generation, members.get(1).generation};
            List<String> missing = new ArrayList<>();
            for (int part = 0; part < partitions; part++)
                for (int i = 0; i < per; i++) if (!processed.containsKey(part + "/" + i)) missing.add(part + "/" + i);
            int dups = 0;
            for (int n : processed.values()) dups += n - 1;
            StringBuilder cm = new StringBuilder();
            for (Map.Entry<Integer, Long> e : committed(admin, group).entrySet()) {
                if (cm.length() > 0) cm.append(',');
                cm.append('"').append(e.getKey()).append("\":").append(e.getValue());
            }
            StringBuilder ms = new StringBuilder();
            for (String m : missing) {
                if (ms.length() > 0) ms.append(',');
                ms.append('"').append(m).append('"');
            }
            System.out.println("{\"killed\":" + killed + ",\"new_coordinator\":" + newCoordinator
                + ",\"generations_before\":" + Arrays.toString(gensBefore) + ",\"generations_after\":" + Arrays.toString(gensAfter)
                + ",\"callbacks_before\":" + callbacksBefore + ",\"callbacks_after\":" + callbacks.get()
                + ",\"missing\":[" + ms + "],\"duplicates\":" + dups + ",\"committed\":{" + cm + "}}");
        } finally {
            for (Member m : members) m.stop = true;
            for (Member m : members) m.thread.join(30_000);
        }
    }
}
